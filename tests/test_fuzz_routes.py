"""Property test: no input makes any route answer 5xx.

Walks ``app.url_map``: every GET route, as each role and anonymously, with random path parameters
(real ids, huge and negative numbers, unicode, NUL, %-escapes, very long strings), random query
strings and random Range headers; then every form, POSTed with a valid CSRF token and a valid base
form with random fields replaced (NUL, huge numbers, dates, long text, random files). The database
holds real scripts, packages, reviews, comments and lexicon rules so the views do real work.

Deterministic for CI (a fixed seed per route); ``INPUT_FUZZ_EXAMPLES=500`` runs more examples per route.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from advisor_studio.access import ROLES, access_rule
from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import LexiconRule, Review
from advisor_studio.distribution.models import Channel, Partner, PartnerApiKey
from advisor_studio.extensions import db
from advisor_studio.referrals import groups as referral_groups
from advisor_studio.referrals import services as referrals
from advisor_studio.studio.models import Package, Script
from advisor_studio.video.models import Rendition
from tests.compliance.test_review_pages import manifest_from, submit_package, submit_script
from tests.conftest import csrf_from, record_of, signed_in
from tests.factories import PASSWORD, ensure_lexicon, legal_script_body, make_channel, make_user
from tests.studio.test_pages import approved_package, create_script

EXAMPLES = int(os.environ.get("INPUT_FUZZ_EXAMPLES", "15"))
# A fixed seed per route (not derandomize, which would give every route the same choices): the same
# examples on every run and machine, different ones for different routes.
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
EVERYONE = ("anonymous", *ROLES)

GOOD_SRT = "1\n00:00:01,000 --> 00:00:02,000\n分散投资\n\n2\n00:00:03,000 --> 00:00:04,000\n长期持有\n"
QUERY_KEYS = ("page", "per_page", "q", "from", "to", "status", "advisor", "platform", "sort", "stage", "age",
              "priority", "overdue", "mine", "kind", "state", "version", "category", "severity", "flagged",
              "expiring", "actor", "action", "object_type", "object_id", "role", "a", "b", "precheck", "next",
              "lang", "cursor", "limit", "owner", "group", "package", "enabled", "archived")
FILE_FIELDS = {"subtitles", "avatar", "file", "video"}

# --- strategies ----------------------------------------------------------------------------------

INT_LIKE = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.integers(min_value=2**31, max_value=2**80).map(str),
    st.sampled_from([str(2**31 - 1), str(2**31), str(2**63 - 1), str(2**63), str(2**64), str(10**30), "-1", "0",
                     "1e20", "1e23", "-0", "007", "NaN", "inf", "-inf", "1.5", "0x10", " 1", "１", "٣", "9" * 30,
                     "9" * 5000]),
)
DATE_LIKE = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "2026-13-01", "20260101", "2026-1-1",
                     "-2026-01-01", "２０２６-01-01", "2026-01-01T00:00:00+99:00"]),
)
NASTY_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\x00", "a\x00b", "%00", "%", "%ZZ", "%E4%B8", "\r\n", "\u2028", "../../etc/passwd", "'\"<>&",
                     "\u202e", "𝕏😀", "\ufeff", "\x1b[31m", "javascript:alert(1)", "//evil.example", "/\\evil"]),
    st.integers(min_value=300, max_value=30_000).map(lambda n: "字" * n),
)
VALUE = st.one_of(INT_LIKE, DATE_LIKE, NASTY_TEXT)
FORM_VALUE = st.one_of(VALUE, st.lists(VALUE, min_size=2, max_size=3))
FILE_VALUE = st.one_of(
    st.binary(max_size=600),
    st.sampled_from([GOOD_SRT.encode(), GOOD_SRT.replace("分散", "分\x00散").encode(), b"\xff\xfe\x00\x00",
                     "phrase,kind,severity,note\n保本,forbidden,block,\x00\n".encode(), b"\x00" * 64]),
    NASTY_TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")),
)
RANGE_HEADER = st.one_of(
    st.none(),
    st.sampled_from(["bytes=0-", "bytes=-5", "bytes=1-0", "bytes=a-b", "bytes=0-1,2-3", "bytes=" + "9" * 5000 + "-",
                     f"bytes={2**64}-", "bytes=-0", "bytes=٣-"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
)
RAW_QUERY_TAIL = st.sampled_from(["", "", "&%ZZ", "&a=%", "&%E4%B8=1", "&&=&", "&page", "&=x"])


def query_strategy():
    keys = st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=8))
    return st.dictionaries(keys, VALUE, max_size=5)


# Numbers for ids that cannot name a real row: POSTs with them must not act on the fixtures' users.
NOT_AN_ID = st.sampled_from([str(2**31), str(2**63), str(2**64), str(10**30), "9" * 5000, "-1", "0", "1e20", "abc",
                             "%00", "%ZZ", "١"])
_PART_RE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def path_value(arg_ids: list[int], converter: str, *, mostly_real_ids: bool = False):
    if converter == "int":
        if mostly_real_ids:  # mostly real rows, so that the form reaches the service
            return st.one_of(*[st.sampled_from(arg_ids).map(str)] * 4, NOT_AN_ID)
        return st.one_of(*[st.sampled_from(arg_ids).map(str)] * 2, INT_LIKE.map(lambda s: quote(s, safe="")),
                         NOT_AN_ID)
    safe = "/" if converter == "path" else ""
    return st.one_of(NASTY_TEXT.map(lambda s: quote(s, safe=safe)), st.sampled_from(["%00", "%ZZ", "..%2F..", "x"]))


def build_path(data, rule, ids: dict[str, list[int]], *, mostly_real_ids: bool = False) -> str:
    def part(match) -> str:
        converter, arg = match.group(1) or "default", match.group(2)
        return data.draw(path_value(ids.get(arg) or [1], converter, mostly_real_ids=mostly_real_ids), label=arg)

    return _PART_RE.sub(part, rule.rule)


def build_url(data, path: str) -> str:
    query = data.draw(query_strategy(), label="query")
    tail = data.draw(RAW_QUERY_TAIL, label="raw")
    text = urlencode(query)
    return path + ("?" + text + tail if text or tail else "")


# --- the world the routes work on ---------------------------------------------------------------


@pytest.fixture
def app(app_factory):
    """Sign-ins are part of the walk: a login limit would turn most of them into 429s."""
    return app_factory(LOGIN_RATE_LIMIT="100000 per minute")


def make_world(app, users) -> SimpleNamespace:
    """Real rows of every kind the routes load, and one signed-in client per role."""
    with app.app_context():
        ensure_lexicon()
        victims = [record_of(make_user("advisor")), record_of(make_user("mcn"))]
        login_user = record_of(make_user("advisor"))
        db.session.commit()
    create_script(app, users["advisor"].id)
    submit_script(app, users["advisor"], title="待审脚本")
    _package_id, review_id = submit_package(app, users["advisor"], users["compliance"])
    approved_package(app, users["advisor"].id, users["compliance"].id)  # for the approved list and withdraw
    with app.app_context():
        review = db.session.get(Review, review_id)
        comment = compliance.add_comment(review, db.session.get(User, users["compliance"].id), "请补充风险提示",
                                         anchor_field="body", anchor_start=0, anchor_end=2)
        channel_id = make_channel().id
        advisor = db.session.get(User, users["advisor"].id)
        group = referral_groups.create_group(owner=advisor, actor=advisor, platform="wecom", name="价值投资群",
                                             member_count=50)
        referral_links = [referrals.create_link(owner=advisor, actor=advisor, group=group,
                                                destination="https://kaihu.example.com/open"),
                          referrals.create_link(owner=advisor, actor=advisor, destination="https://kaihu.example.com/")]
        # The mcn user works for the partner of the approved package, so portal forms reach the services.
        from advisor_studio.distribution import services as distribution
        from advisor_studio.distribution.models import Assignment

        asset = db.session.scalars(sa.select(Assignment).order_by(Assignment.id)).first()
        db.session.get(User, users["mcn"].id).partner_id = asset.partner_id
        publication = distribution.report_publication(
            asset, platform=asset.channel.platform, post_url="https://www.douyin.com/video/1",
            published_at=datetime.now(UTC), actor="test")
        db.session.commit()
        ids = {
            "asset_id": list(db.session.scalars(sa.select(Assignment.id))),
            "script_id": list(db.session.scalars(sa.select(Script.id))),
            "package_id": list(db.session.scalars(sa.select(Package.id))),
            "review_id": list(db.session.scalars(sa.select(Review.id))),
            "rendition_id": list(db.session.scalars(sa.select(Rendition.id))),
            "rule_id": list(db.session.scalars(sa.select(LexiconRule.id).limit(5))),
            "user_id": [v.id for v in victims],
            "group_id": [group.id],
            "link_id": [link.id for link in referral_links],
            "partner_id": list(db.session.scalars(sa.select(Partner.id))),
            "channel_id": list(db.session.scalars(sa.select(Channel.id))),
            "key_id": list(db.session.scalars(sa.select(PartnerApiKey.id))),
        }
        advisor = db.session.get(User, users["advisor"].id)
        body = legal_script_body(advisor)
        comment_id = comment.id
        publication_id = publication.id
    clients = {"anonymous": app.test_client()}
    for role in ROLES:
        clients[role] = signed_in(app, users[role])
    tokens = {role: csrf_from(client.get("/login" if role == "anonymous" else "/account/password")
                              .get_data(as_text=True)) for role, client in clients.items()}
    manifest = manifest_from(clients["compliance"].get(f"/compliance/reviews/{review_id}").get_data(as_text=True))
    forms = base_forms(body, comment_id, manifest, channel_id, login_user)
    forms["distribution.publish"] = {"post_url": "https://www.douyin.com/video/2",
                                     "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")}
    forms["distribution.takedown"] = {"publication_id": str(publication_id), "confirm": "y",
                                      "removed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")}
    return SimpleNamespace(ids=ids, clients=clients, tokens=tokens, login_user=login_user, forms=forms)


def base_forms(body: str, comment_id: int, manifest: str, channel_id: int, login_user) -> dict[str, dict]:
    """A form each endpoint accepts, so that random changes to it reach the services."""
    script = {"title": "资产配置三原则", "body": body, "caption": "长期投资", "hashtags": "#理财 #资产配置",
              "platforms": "douyin", "action": "precheck"}
    rule = {"phrase": "稳赚不赔", "kind": "forbidden", "severity": "block", "category": "return_promise",
            "note": "广告法", "platforms": "douyin", "group": ""}
    confirm = {"reason": "不再使用", "confirm": "y"}
    group = {"platform": "wecom", "name": "价值投资群", "external_id": "", "member_count": "100", "tags": "老客户"}
    link = {"host": "kaihu.example.com", "path": "/open", "campaign": "双十一", "utm_source": "wecom",
            "expires_on": "2030-01-01"}
    return {
        "accounts.login": {"email": login_user.email, "password": login_user.password, "remember": "y"},
        "accounts.password": {"current_password": PASSWORD, "new_password": "another-long-password"},
        "accounts.profile": {"bio": "十年投研经验", "avatar": b"\x89PNG\r\n\x1a\n"},
        "accounts.user_new": {"email": "new-user@example.com", "name": "新用户", "password": "long-enough-password",
                              "roles": "advisor", "sac_number": "S0000000000042", "bio": ""},
        "accounts.user_edit": {"name": "改名", "roles": "mcn", "real_name": "", "sac_number": "", "bio": ""},
        "accounts.user_deactivate": confirm,
        "compliance.comment": {"body": "请补充风险提示", "anchor_field": "body", "anchor_start": "0", "anchor_end": "2",
                               "timecode_ms": "1000", "parent_id": str(comment_id)},
        "compliance.decide": {"decision": "request_changes", "reason": "请修改", "manifest_sha256": manifest},
        "compliance.withdraw": confirm,
        "compliance.rule_new": rule,
        "compliance.rule_edit": rule,
        "compliance.rule_remove": confirm,
        "compliance.lexicon_import": {"file": "phrase,kind,severity,note\n保证收益,forbidden,block,x\n".encode(),
                                      "note": "导入"},
        "compliance.lexicon_try": {"text": "保本稳赚", "platform": "douyin"},
        "core.set_language": {"next": "/studio/"},
        "distribution.webhook_resend": {"confirm": "y"},
        "distribution.webhook_test": {"partner_id": "1"},
        "studio.script_new": script,
        "studio.script": script,
        "studio.script_precheck": script,
        "studio.script_submit": script,
        "studio.script_archive": confirm,
        "studio.package_archive": confirm,
        "studio.package": {"title": "资产配置三原则", "caption": "长期投资", "hashtags": "#理财",
                           "channels": str(channel_id), "cover_time_s": "1.5", "title_card": "y",
                           "subtitles": GOOD_SRT.encode()},
        "video.upload": {"video": b"\x00\x00\x00\x18ftypmp42"},
        "referrals.group_new": group,
        "referrals.group_edit": group,
        "referrals.group_archive": {"confirm": "y"},
        "referrals.group_import": {
            "file": "platform,name,external_id,member_count,tags\nwecom,新群,,5,老客户\n".encode()},
        "referrals.link_new": link,
        "referrals.link_replace": link,
        "referrals.link_bulk": {**link, "target": "groups"},
        "referrals.link_toggle": {"enabled": "0", "confirm": "y"},
        "distribution.partner_new": {"name": "新机构", "contact_name": "李", "contact_email": "li@example.com",
                                     "contact_phone": "+86 10 1234", "webhook_url": "https://93.184.216.34/h"},
        "distribution.partner": {"name": "星河MCN", "contact_email": "x@example.com", "webhook_url": ""},
        "distribution.partner_deactivate": confirm,
        "distribution.partner_secret": {"confirm": "y"},
        "distribution.key_issue": {"label": "发布系统"},
        "distribution.key_revoke": confirm,
        "distribution.member_link": {"user_id": str(login_user.id)},
        "distribution.channel_new": {"partner_id": "1", "platform": "other", "handle": "@fuzz",
                                     "follower_count": "10"},
        "distribution.channel_edit": {"follower_count": "10", "active": "y"},
        "video.disclaimer": {"text": "投资有风险，入市需谨慎"},
        "reconciliation.upload": {"period_from": "2026-11-01", "period_to": "2026-11-30",
                                  "file": "客户编号,开户日期\nA001,2026-11-03\n".encode("gbk")},
    }


def allowed_roles(app, endpoint: str) -> tuple[str, ...]:
    rule = access_rule(app, endpoint) or ""
    if rule.startswith("roles:"):
        return tuple(rule.removeprefix("roles:").split(","))
    if rule == "login":
        return ROLES
    return EVERYONE


def _as_request_data(form: dict) -> dict:
    data = {}
    for key, value in form.items():
        data[key] = (io.BytesIO(value), "upload.bin") if isinstance(value, bytes) else value
    return data


def _describe(method: str, url: str, role: str, extra) -> str:
    return f"{method} {url[:300]!r} as {role}: {repr(extra)[:500]}"


def walk(rule, check) -> None:
    """Run ``check(data)`` on FUZZ_SETTINGS' number of Hypothesis examples, seeded by the rule."""

    @seed(zlib.crc32(f"{sorted(rule.methods)} {rule.rule}".encode()))
    @FUZZ_SETTINGS
    @given(data=st.data())
    def never_fails(data):
        check(data)

    never_fails()


# --- the walks -----------------------------------------------------------------------------------


def test_no_get_route_answers_5xx_for_any_path_query_or_range(app, users):
    world = make_world(app, users)
    statuses: Counter = Counter()
    rules = sorted((r for r in app.url_map.iter_rules() if "GET" in r.methods), key=lambda r: r.rule)
    assert len(rules) > 30
    for rule in rules:

        roles = allowed_roles(app, rule.endpoint)

        def get_never_fails(data, rule=rule, roles=roles):
            # Mostly someone the route serves, so that the page does its work; sometimes anyone.
            role = data.draw(st.sampled_from((*roles * 4, *EVERYONE)), label="role")
            url = build_url(data, build_path(data, rule, world.ids))
            range_header = data.draw(RANGE_HEADER, label="range")
            headers = {"Range": range_header} if range_header else {}
            if data.draw(st.booleans(), label="json"):
                headers["Accept"] = "application/json"
            resp = world.clients[role].get(url, headers=headers)
            statuses[resp.status_code] += 1
            assert resp.status_code < 500, _describe("GET", url, role, headers)

        walk(rule, get_never_fails)
    print("GET statuses:", dict(sorted(statuses.items())))
    assert statuses[200] > 0 and statuses[404] > 0 and statuses[400] > 0  # real pages, misses and refusals


# Run last: each of these ends what the others work on (archived, withdrawn, decided, signed out).
FINAL_ENDPOINTS = ("accounts.logout", "accounts.user_deactivate", "compliance.decide", "compliance.withdraw",
                   "compliance.rule_remove", "studio.script_archive", "studio.package_archive",
                   "referrals.group_archive", "referrals.link_toggle",
                   "distribution.partner_deactivate", "distribution.key_revoke")


def test_no_form_answers_5xx_for_any_field_value(app, users):
    world = make_world(app, users)
    statuses: Counter = Counter()
    rules = [r for r in app.url_map.iter_rules() if "POST" in r.methods]
    rules.sort(key=lambda r: (r.endpoint in FINAL_ENDPOINTS, r.rule))
    assert len(rules) > 25
    all_fields = sorted({name for form in world.forms.values() for name in form} | {"csrf_token", "next"})
    for rule in rules:
        base = world.forms.get(rule.endpoint, {})
        roles = allowed_roles(app, rule.endpoint)

        def post_never_fails(data, rule=rule, base=base, roles=roles):
            role = data.draw(st.sampled_from((*roles * 4, "anonymous")), label="role")
            url = build_url(data, build_path(data, rule, world.ids, mostly_real_ids=True))
            form = dict(base)
            for name in data.draw(st.lists(st.sampled_from(all_fields), max_size=4, unique=True), label="fields"):
                if data.draw(st.integers(0, 5), label="drop") == 0:
                    form.pop(name, None)
                else:
                    form[name] = data.draw(FILE_VALUE if name in FILE_FIELDS else FORM_VALUE, label=name)
            form.update(data.draw(st.dictionaries(st.text(max_size=8), VALUE, max_size=2), label="extra"))
            client, token = world.clients[role], world.tokens[role]
            if rule.endpoint in ("accounts.login", "accounts.logout"):
                # A fresh client each time: signing in or out must not change who the other examples are.
                client = app.test_client() if role == "anonymous" else signed_in(app, world.login_user)
                token = csrf_from(client.get("/login" if role == "anonymous" else "/account/password")
                                  .get_data(as_text=True))
            form["csrf_token"] = token
            resp = client.post(url, data=_as_request_data(form))
            statuses[resp.status_code] += 1
            assert resp.status_code < 500, _describe("POST", url, role, form)

        walk(rule, post_never_fails)
    print("POST statuses:", dict(sorted(statuses.items())))
    assert statuses[302] > 0 and statuses[400] > 0  # forms that went through, and refusals

