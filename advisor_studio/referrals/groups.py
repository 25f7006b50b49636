"""Community groups (社群): create, edit, archive, member-count history and CSV import.

Services flush, never commit, and write the audit entry; a bad CSV row raises before anything is
added, so the caller's rollback leaves nothing half-imported.
"""

from __future__ import annotations

import codecs
import csv
import io
import re

import sqlalchemy as sa
from flask_babel import gettext as _

from advisor_studio import audit
from advisor_studio.concurrency import compare_and_set, stale_conflict
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals.models import GROUP_PLATFORMS, CommunityGroup, GroupMemberCount

NAME_MAX = 120
EXTERNAL_ID_MAX = 128
MEMBER_COUNT_MAX = 10_000_000  # far above any WeCom/WeChat/QQ group; keeps typos like 1e9 out
TAG_MAX = 20
TAGS_MAX = 10
CSV_MAX_BYTES = 1024 * 1024
CSV_MAX_ROWS = 2000
CSV_COLUMNS = ("platform", "name", "external_id", "member_count", "tags")
# Excel users type the platform as they see it in the UI; both the code and the Chinese name work.
PLATFORM_ALIASES = {"企业微信": "wecom", "微信": "wechat", "飞书": "feishu", "钉钉": "dingtalk", "其他": "other",
                    "其它": "other"}
_TAG_SPLIT = re.compile(r"[,，|;；、]")


def _printable(text: str) -> bool:
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def parse_tags(value) -> list[str]:
    """Tags from a list or from text separated by commas, |, ; or 、 (deduplicated, order kept)."""
    items = value if isinstance(value, list | tuple) else _TAG_SPLIT.split(value or "")
    tags: list[str] = []
    for item in items:
        tag = str(item).strip()
        if not tag or tag in tags:
            continue
        if len(tag) > TAG_MAX or not _printable(tag):
            raise ValidationError(_("A tag is at most %(n)d printable characters.", n=TAG_MAX),
                                  fields={"tags": _("tag too long")})
        tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise ValidationError(_("At most %(n)d tags.", n=TAGS_MAX), fields={"tags": _("too many tags")})
    return tags


def _platform(value: str) -> str:
    platform = (value or "").strip()
    platform = PLATFORM_ALIASES.get(platform, platform.lower())
    if platform not in GROUP_PLATFORMS:
        raise ValidationError(_("Unknown platform “%(p)s”: use one of %(all)s.", p=value[:20],
                                all=", ".join(GROUP_PLATFORMS)), fields={"platform": _("unknown platform")})
    return platform


def _name(value: str) -> str:
    name = (value or "").strip()
    if not name:
        raise ValidationError(_("The group name is required."), fields={"name": _("required")})
    if len(name) > NAME_MAX or not _printable(name):
        raise ValidationError(_("The group name is at most %(n)d printable characters.", n=NAME_MAX),
                              fields={"name": _("too long")})
    return name


def _external_id(value) -> str | None:
    external_id = (value or "").strip()
    if not external_id:
        return None
    if len(external_id) > EXTERNAL_ID_MAX or not _printable(external_id):
        raise ValidationError(_("The external id is at most %(n)d printable characters.", n=EXTERNAL_ID_MAX),
                              fields={"external_id": _("too long")})
    return external_id


def _member_count(value) -> int:
    if isinstance(value, str):
        value = value.strip().replace(",", "")
        if not value:
            return 0
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            raise ValidationError(_("The member count must be a whole number from 0 to %(max)d.",
                                    max=MEMBER_COUNT_MAX), fields={"member_count": _("invalid")})
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MEMBER_COUNT_MAX:
        raise ValidationError(_("The member count must be a whole number from 0 to %(max)d.", max=MEMBER_COUNT_MAX),
                              fields={"member_count": _("invalid")})
    return value


def _check_owner(owner) -> None:
    if owner is None or not owner.has_role("advisor"):
        raise ValidationError(_("A community group belongs to an advisor."), fields={"owner": _("not an advisor")})


def _duplicate(platform: str, external_id: str | None, exclude_id: int | None = None) -> CommunityGroup | None:
    if external_id is None:
        return None
    stmt = sa.select(CommunityGroup).where(CommunityGroup.platform == platform,
                                           CommunityGroup.external_id == external_id)
    if exclude_id is not None:
        stmt = stmt.where(CommunityGroup.id != exclude_id)
    return db.session.scalar(stmt.limit(1))


def _duplicate_error(platform: str, external_id: str) -> Conflict:
    err = Conflict(_("A %(platform)s group with external id “%(id)s” already exists.", platform=platform,
                     id=external_id), code="group_duplicate")
    err.fields = {"external_id": _("already used on this platform")}
    return err


def _record_count(group: CommunityGroup, actor) -> None:
    db.session.add(GroupMemberCount(group_id=group.id, member_count=group.member_count,
                                    recorded_by_id=getattr(actor, "id", None)))


def create_group(*, owner, actor, platform: str, name: str, external_id: str | None = None, member_count=0,
                 tags=None) -> CommunityGroup:
    """A new active group of advisor ``owner``, with its first member-count observation."""
    _check_owner(owner)
    platform, name, external_id = _platform(platform), _name(name), _external_id(external_id)
    member_count, tags = _member_count(member_count), parse_tags(tags)
    if _duplicate(platform, external_id) is not None:
        raise _duplicate_error(platform, external_id)
    now = utcnow()
    group = CommunityGroup(owner_id=owner.id, platform=platform, name=name, external_id=external_id,
                           member_count=member_count, tags=tags, active=True, created_at=now, updated_at=now)
    db.session.add(group)
    db.session.flush()
    _record_count(group, actor)
    db.session.flush()
    audit.record("group.created", "community_group", group.id, actor=actor,
                 details={"owner_id": owner.id, "platform": platform, "name": name, "external_id": external_id,
                          "member_count": member_count, "tags": tags})
    return group


def update_group(group: CommunityGroup, *, actor, platform: str, name: str, external_id: str | None = None,
                 member_count=0, tags=None) -> bool:
    """Save changed fields of a live group; a changed member count adds a history row. True if anything changed."""
    if group.archived_at is not None:
        raise Conflict(_("This community group is archived."), code="group_archived")
    values = {"platform": _platform(platform), "name": _name(name), "external_id": _external_id(external_id),
              "member_count": _member_count(member_count), "tags": parse_tags(tags)}
    changes = {k: v for k, v in values.items() if getattr(group, k) != v}
    if not changes:
        return False
    if _duplicate(values["platform"], values["external_id"], exclude_id=group.id) is not None:
        raise _duplicate_error(values["platform"], values["external_id"])
    before = {k: getattr(group, k) for k in changes}
    if not compare_and_set(group, [CommunityGroup.archived_at.is_(None)], **changes, updated_at=utcnow()):
        raise stale_conflict(_("community group"))
    if "member_count" in changes:
        _record_count(group, actor)
    db.session.flush()
    audit.record("group.updated", "community_group", group.id, actor=actor,
                 details={"before": before, "after": changes})
    return True


def archive_group(group: CommunityGroup, *, actor) -> None:
    """Archive a group: it leaves lists and gets no new links; its links and history stay."""
    if group.archived_at is not None:
        return
    now = utcnow()
    if not compare_and_set(group, [CommunityGroup.archived_at.is_(None)], active=False, archived_at=now,
                           updated_at=now):
        raise stale_conflict(_("community group"))
    audit.record("group.archived", "community_group", group.id, actor=actor, details={"name": group.name})


def member_history(group_id: int, limit: int = 50) -> list[GroupMemberCount]:
    """The group's member-count observations, newest first."""
    stmt = (sa.select(GroupMemberCount).where(GroupMemberCount.group_id == group_id)
            .order_by(GroupMemberCount.recorded_at.desc(), GroupMemberCount.id.desc()).limit(limit))
    return list(db.session.scalars(stmt))


# --- CSV import ---------------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """The text of an uploaded CSV: UTF-8 (with or without Excel's BOM) or GBK/GB18030 (Excel's
    default "CSV" on Chinese Windows); UTF-16 (Excel's "Unicode text") is refused with a hint."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationError(_("The file is UTF-16 (“Unicode text”). Save it from Excel as “CSV UTF-8” instead."),
                              fields={"row 0": _("UTF-16 is not supported; save as CSV UTF-8")}, code="csv_invalid")
    if b"\x00" in data:
        raise ValidationError(_("The file is not a text CSV."),
                              fields={"row 0": _("the file contains zero bytes")}, code="csv_invalid")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ValidationError(_("The file is neither UTF-8 nor GBK text. Save it from Excel as “CSV UTF-8”."),
                              fields={"row 0": _("unknown text encoding")}, code="csv_invalid") from None


def _csv_error(problems: dict[str, str]) -> ValidationError:
    return ValidationError(_("The CSV has errors; nothing was imported."), fields=problems, code="csv_invalid")


def import_groups_csv(data: bytes, *, owner, actor) -> list[CommunityGroup]:
    """Create one group of ``owner`` per CSV row; any bad row imports nothing and every bad row is named."""
    _check_owner(owner)
    if len(data) > CSV_MAX_BYTES:
        raise _csv_error({"row 0": _("the file is larger than %(n)d KB", n=CSV_MAX_BYTES // 1024)})
    text = decode_csv(data)
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise _csv_error({"row 0": _("malformed CSV: %(why)s", why=str(exc)[:200])}) from None
    if not rows:
        raise _csv_error({"row 1": _("missing header row")})
    header = [cell.strip().lower() for cell in rows[0]]
    if tuple(header) != CSV_COLUMNS:
        raise _csv_error({"row 1": _("the header must be %(cols)s", cols=",".join(CSV_COLUMNS))})
    body = [(number, row) for number, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]
    if not body:
        raise _csv_error({"row 2": _("no data rows")})
    if len(body) > CSV_MAX_ROWS:
        raise _csv_error({"row 0": _("at most %(n)d rows per file", n=CSV_MAX_ROWS)})
    problems: dict[str, str] = {}
    parsed = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in body:
        if len(row) != len(CSV_COLUMNS):
            problems[f"row {number}"] = _("%(n)d columns, expected %(m)d", n=len(row), m=len(CSV_COLUMNS))
            continue
        cells = dict(zip(CSV_COLUMNS, row, strict=True))
        try:
            values = {"platform": _platform(cells["platform"]), "name": _name(cells["name"]),
                      "external_id": _external_id(cells["external_id"]),
                      "member_count": _member_count(cells["member_count"]), "tags": parse_tags(cells["tags"])}
        except ValidationError as err:
            problems[f"row {number}"] = err.message
            continue
        key = (values["platform"], values["external_id"])
        if values["external_id"] is not None:
            if key in seen:
                problems[f"row {number}"] = _("same platform and external id as row %(n)d", n=seen[key])
                continue
            seen[key] = number
        parsed.append((number, values))
    # One query for every (platform, external id) already stored, not one per row.
    wanted = [k for k in seen]
    if wanted:
        existing = set(db.session.execute(
            sa.select(CommunityGroup.platform, CommunityGroup.external_id)
            .where(sa.tuple_(CommunityGroup.platform, CommunityGroup.external_id).in_(wanted))).all())
        for number, values in parsed:
            if (values["platform"], values["external_id"]) in existing:
                problems[f"row {number}"] = _("a group with this platform and external id already exists")
    if problems:
        raise _csv_error(dict(sorted(problems.items(), key=lambda kv: int(kv[0].split()[1]))[:200]))
    # Rows are already checked (duplicates in one query above): insert them in two flushes and audit the
    # import as one entry naming every group, instead of three statements and an audit entry per row.
    now = utcnow()
    groups = [CommunityGroup(owner_id=owner.id, active=True, created_at=now, updated_at=now, **values)
              for _number, values in parsed]
    db.session.add_all(groups)
    db.session.flush()
    for group in groups:
        _record_count(group, actor)
    db.session.flush()
    audit.record("group.imported", "user", owner.id, actor=actor,
                 details={"rows": len(groups), "groups": [[g.id, g.platform, g.external_id, g.name] for g in groups]})
    return groups

