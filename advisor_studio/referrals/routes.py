"""Pages of groups and links: advisors' own lists and forms, admins' lists of all, CSV import and export."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from advisor_studio.access import require, roles_required
from advisor_studio.accounts.models import User
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import DomainError, ValidationError
from advisor_studio.extensions import db, limiter
from advisor_studio.referrals import conversions, queries, services
from advisor_studio.referrals import groups as group_services
from advisor_studio.referrals.forms import (
    BULK_TARGETS,
    EVENT_LABELS,
    KIND_LABELS,
    ArchiveForm,
    BulkLinkForm,
    CustomerLinkForm,
    GroupForm,
    GroupImportForm,
    LinkForm,
    ToggleForm,
)
from advisor_studio.referrals.models import (
    EVENTS,
    GROUP_PLATFORM_LABELS,
    GROUP_PLATFORMS,
    LINK_KINDS,
    CommunityGroup,
    ReferralLink,
)
from advisor_studio.referrals.permissions import (
    can_create_links,
    can_manage_group,
    can_manage_link,
    can_view_group,
    can_view_link,
    is_admin,
)
from advisor_studio.web import commit_or_report, csv_cell, query_int, query_page

bp = Blueprint("referrals", __name__, url_prefix="/referrals")

PAGE_SIZES = (25, 50, 100)
EXPORT_MAX_ROWS = 50_000
BEIJING = ZoneInfo("Asia/Shanghai")


@bp.app_context_processor
def referral_labels():
    return {"group_platform_labels": GROUP_PLATFORM_LABELS, "link_kind_labels": KIND_LABELS,
            "event_labels": EVENT_LABELS}


def _arg(name: str, allowed=None, limit: int = 100) -> str:
    value = (request.args.get(name) or "").strip()[:limit]
    return value if allowed is None or value in allowed else ""


def _per_page() -> int:
    number = query_int("per_page")
    return number if number in PAGE_SIZES else current_app.config.get("PAGE_SIZE", 25)


def _own_or_404(obj, allowed: bool):
    # Someone else's group or link answers exactly like a missing one.
    if obj is None or not allowed:
        abort(404)
    return obj


# --- groups -------------------------------------------------------------------------------------


def _group_filters() -> dict:
    return {"q": _arg("q"), "platform": _arg("platform", GROUP_PLATFORMS), "archived": _arg("archived", ("1",)),
            "owner": query_int("owner")}


def _groups_page(owner_id: int | None, filters: dict):
    stmt = queries.groups_query(owner_id=owner_id, platform=filters["platform"] or None,
                                archived=bool(filters["archived"]), q=filters["q"])
    return db.paginate(stmt, page=query_page(), per_page=_per_page(), error_out=False)


@bp.route("/groups")
@roles_required("advisor")
def groups():
    filters = _group_filters()
    page = _groups_page(current_user.id, filters)
    return render_template("referrals/groups.html", page=page, filters=filters, admin_view=False,
                           platforms=GROUP_PLATFORMS, archive_form=ArchiveForm(formdata=None), advisors=[])


@bp.route("/admin/groups")
@roles_required("admin")
def admin_groups():
    filters = _group_filters()
    page = _groups_page(filters["owner"], filters)
    return render_template("referrals/groups.html", page=page, filters=filters, admin_view=True,
                           platforms=GROUP_PLATFORMS, archive_form=ArchiveForm(formdata=None),
                           advisors=queries.advisors())


@bp.route("/groups/export.csv")
@roles_required("advisor", "admin")
def groups_export():
    filters = _group_filters()
    owner_id = filters["owner"] if is_admin(current_user) else current_user.id
    stmt = queries.groups_query(owner_id=owner_id, platform=filters["platform"] or None,
                                archived=bool(filters["archived"]), q=filters["q"])
    out = io.StringIO()
    out.write("\ufeff")  # UTF-8 with BOM: Excel then shows Chinese correctly
    writer = csv.writer(out, lineterminator="\r\n")
    # The import's columns first, so an exported file can be edited and imported elsewhere.
    writer.writerow([*group_services.CSV_COLUMNS, "id", "advisor", "archived_at"])
    for group in db.session.scalars(stmt.limit(EXPORT_MAX_ROWS)).unique():
        writer.writerow([csv_cell(v) for v in (
            group.platform, group.name, group.external_id, group.member_count, "|".join(group.tags or []),
            group.id, group.owner.name, group.archived_at.isoformat() if group.archived_at else "")])
    return Response(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="community-groups.csv"', "Cache-Control": "no-store"})


def _owner_choices(form_field) -> None:
    form_field.choices = [SelectChoice(None, "—")] + [SelectChoice(u.id, f"{u.name} ({u.email})")
                                                       for u in queries.advisors()]


def _chosen_owner(form) -> User | None:
    """The group's owner: the signed-in advisor, or the advisor an admin picked."""
    if not is_admin(current_user):
        return db.session.get(User, current_user.id)
    if not form.owner_id.data:
        form.owner_id.errors = [*form.owner_id.errors, _("Choose the advisor who runs this group.")]
        return None
    return db.session.get(User, form.owner_id.data)


def _groups_home():
    return url_for(".admin_groups") if is_admin(current_user) else url_for(".groups")


@bp.route("/groups/new", methods=["GET", "POST"])
@roles_required("advisor", "admin")
def group_new():
    form = GroupForm()
    _owner_choices(form.owner_id)
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        owner = _chosen_owner(form)
        if owner is not None:
            group, failed = commit_or_report(lambda: group_services.create_group(
                owner=owner, actor=current_user, platform=form.platform.data, name=form.name.data,
                external_id=form.external_id.data, member_count=form.member_count.data or 0,
                tags=form.tags.data), form)
            if not failed:
                flash(_("Group “%(name)s” added.", name=group.name), "success")
                return redirect(_groups_home())
            status = failed
    return render_template("referrals/group_form.html", form=form, group=None, history=[],
                           admin_view=is_admin(current_user)), status


def _load_group(group_id: int) -> CommunityGroup:
    group = db.session.get(CommunityGroup, group_id)
    return _own_or_404(group, can_view_group(current_user, group))


@bp.route("/groups/<int:group_id>", methods=["GET", "POST"])
@roles_required("advisor", "admin")
def group_edit(group_id: int):
    group = _load_group(group_id)
    require(can_manage_group(current_user, group))
    form = GroupForm(obj=group)
    if request.method == "GET":
        # The group holds a list of tags and the field edits "a, b" text (``obj`` wins over ``data=``, so
        # the list's repr "['a']" used to fill the field and be saved back as one tag).
        form.tags.data = ", ".join(group.tags or [])
    del form.owner_id  # the owner of a group does not change
    status = 400 if request.method == "POST" else 200
    if request.method == "POST" and group.archived_at is not None:
        flash(_("This community group is archived."), "warning")
        return redirect(_groups_home())
    if form.validate_on_submit():
        changed, failed = commit_or_report(lambda: group_services.update_group(
            group, actor=current_user, platform=form.platform.data, name=form.name.data,
            external_id=form.external_id.data, member_count=form.member_count.data or 0, tags=form.tags.data), form)
        if not failed:
            flash(_("Group “%(name)s” saved.", name=group.name) if changed else _("Nothing changed."),
                  "success" if changed else "info")
            return redirect(_groups_home())
        status = failed
    return render_template("referrals/group_form.html", form=form, group=group,
                           history=group_services.member_history(group.id), admin_view=is_admin(current_user),
                           archive_form=ArchiveForm(formdata=None)), status


@bp.route("/groups/<int:group_id>/archive", methods=["POST"])
@roles_required("advisor", "admin")
def group_archive(group_id: int):
    group = _load_group(group_id)
    require(can_manage_group(current_user, group))
    form = ArchiveForm()
    if not form.validate_on_submit():
        flash(_("Tick the box to confirm archiving the group."), "danger")
        return redirect(url_for(".group_edit", group_id=group.id))
    _done, failed = commit_or_report(lambda: group_services.archive_group(group, actor=current_user))
    if not failed:
        flash(_("Group “%(name)s” archived.", name=group.name), "success")
    return redirect(_groups_home())


def _import_errors(err: DomainError) -> list[tuple[int, str]]:
    rows = []
    for key, reason in err.fields.items():
        number = key.removeprefix("row ").strip()
        rows.append((int(number) if number.isdigit() else 0, reason))
    return sorted(rows)


@bp.route("/groups/import", methods=["GET", "POST"])
@roles_required("advisor", "admin")
def group_import():
    form = GroupImportForm()
    _owner_choices(form.owner_id)
    errors: list[tuple[int, str]] = []
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        owner = _chosen_owner(form)
        data = form.file.data.stream.read(group_services.CSV_MAX_BYTES + 1)
        if owner is not None:
            try:
                made = group_services.import_groups_csv(data, owner=owner, actor=current_user)
            except DomainError as err:
                db.session.rollback()
                flash(err.message, "danger")
                errors = _import_errors(err)
                status = err.status
            else:
                db.session.commit()
                flash(_("%(n)d groups imported.", n=len(made)), "success")
                return redirect(_groups_home())
    return render_template("referrals/group_import.html", form=form, errors=errors,
                           admin_view=is_admin(current_user),
                           columns=",".join(group_services.CSV_COLUMNS)), status


# --- links: lists and export --------------------------------------------------------------------


def _link_filters(*, owner_scope: int | None) -> tuple[queries.LinkFilters, dict]:
    raw = {"kind": _arg("kind", LINK_KINDS), "enabled": _arg("enabled", ("1", "0")), "group": query_int("group"),
           "package": query_int("package"), "owner": query_int("owner"), "q": _arg("q", limit=64)}
    filters = queries.LinkFilters(
        owner_id=owner_scope if owner_scope is not None else raw["owner"], kind=raw["kind"] or None,
        enabled=None if not raw["enabled"] else raw["enabled"] == "1", group_id=raw["group"],
        package_id=raw["package"], q=raw["q"])
    return filters, raw


def _own_scope() -> int | None:
    """Advisors only ever see their own links; admins and compliance everyone's."""
    if is_admin(current_user) or current_user.has_role("compliance"):
        return None
    return current_user.id


def _render_links(template: str, *, admin_view: bool):
    filters, raw = _link_filters(owner_scope=None if admin_view else current_user.id)
    page = db.paginate(queries.links_query(filters), page=query_page(), per_page=_per_page(), error_out=False)
    counts = queries.link_counts(link.id for link in page.items)
    owner_id = None if admin_view else current_user.id
    groups = list(db.session.scalars(queries.groups_query(owner_id=owner_id).limit(500))) if not admin_view \
        else []
    return render_template(template, page=page, counts=counts, filters=raw, admin_view=admin_view,
                           kinds=LINK_KINDS, groups=groups, advisors=queries.advisors() if admin_view else [],
                           events=EVENTS, toggle_form=ToggleForm(formdata=None),
                           public_url=services.public_url, now=utcnow())


@bp.route("/links")
@roles_required("advisor")
def links():
    return _render_links("referrals/links.html", admin_view=False)


@bp.route("/admin/links")
@roles_required("admin", "compliance")
def admin_links():
    return _render_links("referrals/links.html", admin_view=True)


EXPORT_COLUMNS = ("code", "public_url", "kind", "advisor", "sac_number", "package_id", "package", "channel",
                  "group", "campaign", "destination", "utm", "enabled", "expires_at", "created_at",
                  "replaced_by_id", "clicks", *EVENTS)


@bp.route("/links/export.csv")
@roles_required("advisor", "admin", "compliance")
def links_export():
    filters, _raw = _link_filters(owner_scope=_own_scope())
    rows = list(db.session.scalars(queries.links_query(filters).limit(EXPORT_MAX_ROWS)).unique())
    counts = queries.link_counts(link.id for link in rows) if rows else {}
    out = io.StringIO()
    out.write("\ufeff")  # UTF-8 with BOM: Excel then shows Chinese correctly
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for link in rows:
        profile = link.owner.advisor_profile
        c = counts[link.id]
        writer.writerow([csv_cell(v) for v in (
            link.code, services.public_url(link), link.kind, link.owner.name, profile.sac_number if profile else "",
            link.package_id, link.package.title if link.package else "", link.channel.label if link.channel else "",
            link.group.name if link.group else "", link.campaign, link.destination,
            "&".join(f"{k}={v}" for k, v in (link.utm or {}).items()), "1" if link.enabled else "0",
            link.expires_at.isoformat() if link.expires_at else "", link.created_at.isoformat(),
            link.replaced_by_id, c["clicks"], *(c["events"][e] for e in EVENTS))])
    return Response(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="referral-links.csv"', "Cache-Control": "no-store"})


# --- links: create, bulk, replace -----------------------------------------------------------------


def _fill_link_choices(form, owner_id: int) -> dict:
    packages = queries.approved_packages_of(owner_id)
    none = SelectChoice(None, _("— none —"))
    form.package_id.choices = [none] + [SelectChoice(p.id, f"#{p.id} {p.title}") for p in packages]
    channels = {c.id: c for p in packages for c in p.channels}
    form.channel_id.choices = [none] + [SelectChoice(c.id, c.label) for c in channels.values()]
    form.group_id.choices = [none] + [SelectChoice(g.id, g.name) for g in queries.active_groups_of(owner_id)]
    form.host.choices = [SelectChoice(h, h) for h in current_app.config["REFERRAL_ALLOWED_HOSTS"]]
    return {"packages": {p.id: p for p in packages}, "channels": channels}


def _destination(form) -> str:
    if form.destination.data:
        return form.destination.data
    path = form.path.data or "/"
    if not path.startswith("/"):
        path = "/" + path
    return f"https://{form.host.data}{path}"


def _expiry(form) -> datetime | None:
    day = form.expires_on.data
    if day is None:
        return None
    # The link works through the whole chosen day in Beijing, when advisors and customers live.
    return datetime.combine(day, time(23, 59, 59), BEIJING).astimezone(ZoneInfo("UTC"))


def _utm(form) -> dict:
    return {k: form[k].data for k in services.UTM_KEYS if form[k].data}


def _link_changes(form, choices: dict) -> dict:
    package = choices["packages"].get(form.package_id.data)
    channel = choices["channels"].get(form.channel_id.data)
    group = db.session.get(CommunityGroup, form.group_id.data) if form.group_id.data else None
    if channel is not None and package is None:
        # A channel names where a package is posted; alone it would attribute clicks to no content.
        raise ValidationError(_("Choose the package that is posted on this channel."),
                              fields={"channel_id": _("needs a package")})
    return {"destination": _destination(form), "package": package, "channel": channel, "group": group,
            "campaign": form.campaign.data, "utm": _utm(form), "expires_at": _expiry(form)}


@bp.route("/links/new", methods=["GET", "POST"])
@roles_required("advisor")
def link_new():
    require(can_create_links(current_user))
    form = LinkForm()
    choices = _fill_link_choices(form, current_user.id)
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        link, failed = commit_or_report(lambda: services.create_link(
            owner=db.session.get(User, current_user.id), actor=current_user, **_link_changes(form, choices)), form)
        if not failed:
            flash(_("Link %(code)s created.", code=link.code), "success")
            return redirect(url_for(".link", link_id=link.id))
        status = failed
    return render_template("referrals/link_form.html", form=form, link=None), status


@bp.route("/links/bulk", methods=["GET", "POST"])
@roles_required("advisor")
def link_bulk():
    require(can_create_links(current_user))
    form = BulkLinkForm()
    choices = _fill_link_choices(form, current_user.id)
    del form.channel_id, form.group_id  # the bulk action makes those one per link
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        owner = db.session.get(User, current_user.id)
        package = choices["packages"].get(form.package_id.data)
        common = {"owner": owner, "actor": current_user, "destination": _destination(form),
                  "campaign": form.campaign.data, "utm": _utm(form), "expires_at": _expiry(form)}
        bulk = services.bulk_links_for_groups if form.target.data == "groups" else services.bulk_links_for_channels
        made, failed = commit_or_report(lambda: bulk(package=package, **common), form)
        if not failed:
            flash(_("%(n)d links created.", n=len(made)), "success")
            return redirect(url_for(".links"))
        status = failed
    return render_template("referrals/link_bulk.html", form=form, targets=BULK_TARGETS), status


def _load_link(link_id: int) -> ReferralLink:
    link = db.session.get(ReferralLink, link_id)
    return _own_or_404(link, can_view_link(current_user, link))


@bp.route("/links/<int:link_id>")
@roles_required("advisor", "admin", "compliance")
def link(link_id: int):
    link = _load_link(link_id)
    series = queries.daily_clicks(link.id)
    return render_template("referrals/link.html", link=link, counts=queries.link_counts([link.id])[link.id],
                           chart=queries.bar_chart(series), history=queries.link_history(link),
                           public_url=services.public_url, events=EVENTS,
                           can_manage=can_manage_link(current_user, link), toggle_form=ToggleForm(formdata=None),
                           now=utcnow())


@bp.route("/links/<int:link_id>/edit", methods=["GET", "POST"])
@roles_required("advisor", "admin")
def link_replace(link_id: int):
    link = _load_link(link_id)
    require(can_manage_link(current_user, link))
    if link.replaced_by_id is not None:
        flash(_("This link was already replaced; edit its newest version."), "warning")
        return redirect(url_for(".link", link_id=link.replaced_by_id))
    form = LinkForm()
    choices = _fill_link_choices(form, link.owner_id)
    if request.method == "GET":
        form.package_id.data, form.channel_id.data, form.group_id.data = link.package_id, link.channel_id, \
            link.group_id
        form.campaign.data, form.destination.data = link.campaign, link.destination
        for key in services.UTM_KEYS:
            form[key].data = (link.utm or {}).get(key, "")
        if link.expires_at:
            form.expires_on.data = link.expires_at.astimezone(BEIJING).date()
    # The link's own package and group stay choosable even when no longer approved or active.
    if link.package is not None and link.package_id not in choices["packages"]:
        choices["packages"][link.package_id] = link.package
        form.package_id.choices.append(SelectChoice(link.package_id, f"#{link.package_id} {link.package.title}"))
        for channel in link.package.channels:
            choices["channels"].setdefault(channel.id, channel)
            form.channel_id.choices.append(SelectChoice(channel.id, channel.label))
    if link.group is not None and link.group_id not in {c.value for c in form.group_id.choices}:
        form.group_id.choices.append(SelectChoice(link.group_id, link.group.name))
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        new, failed = commit_or_report(lambda: services.replace_link(link, current_user,
                                                                     **_link_changes(form, choices)), form)
        if not failed:
            if new is link:
                flash(_("Nothing changed."), "info")
            else:
                flash(_("New link %(new)s made; %(old)s is disabled and keeps its history.", new=new.code,
                        old=link.code), "success")
            return redirect(url_for(".link", link_id=new.id))
        status = failed
    return render_template("referrals/link_form.html", form=form, link=link), status


@bp.route("/links/<int:link_id>/enabled", methods=["POST"])
@roles_required("advisor", "admin")
def link_toggle(link_id: int):
    link = _load_link(link_id)
    require(can_manage_link(current_user, link))
    form = ToggleForm()
    if not form.validate_on_submit() or (form.enabled.data == "0" and not form.confirm.data):
        flash(_("Tick the box to confirm disabling the link."), "danger")
        return redirect(url_for(".link", link_id=link.id))
    enable = form.enabled.data == "1"
    # A replaced link stays disabled (the service's rule): that refusal is a warning.
    _done, failed = commit_or_report(lambda: services.set_link_enabled(link, enable, actor=current_user),
                                     category="warning")
    if failed:
        return redirect(url_for(".link", link_id=link.id))
    flash(_("Link %(code)s enabled.", code=link.code) if enable else _("Link %(code)s disabled.", code=link.code),
          "success")
    return redirect(url_for(".link", link_id=link.id))


@bp.route("/links/<int:link_id>/card")
@roles_required("advisor", "admin")
def link_card(link_id: int):
    link = _load_link(link_id)
    require(can_manage_link(current_user, link))
    return render_template("referrals/card.html", link=link, url=services.public_url(link),
                           profile=link.owner.advisor_profile)


# --- customers' own links (以老带新) --------------------------------------------------------------


def _customer_link_limit() -> str:
    return current_app.config["CUSTOMER_LINK_RATE_LIMIT"]


@bp.route("/customer-links", methods=["GET", "POST"])
@roles_required("advisor", "admin")
@limiter.limit(_customer_link_limit, methods=["POST"], key_func=lambda: f"customer-link:{current_user.get_id()}")
def customer_link():
    """Give a customer who opened an account through an advisor's link their own link to share.

    Customers are known here only by a keyed hash of their reference, so the advisor types the
    reference the account-opening system shows. An advisor finds only customers of their own links:
    someone else's customer, an unknown reference and an unattributed customer read the same, so the
    form reveals nothing about other advisors' customers.
    """
    form = CustomerLinkForm()
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        customer = conversions.find_customer(form.customer_ref.data)
        brought_by = db.session.get(ReferralLink, customer.link_id) if customer and customer.link_id else None
        if brought_by is None or not (is_admin(current_user) or brought_by.owner_id == current_user.id):
            form.customer_ref.errors = [_("No customer of yours has this reference. Check it against the "
                                          "account-opening system; only customers who came through your "
                                          "links can be found.")]
            status = 404
        else:
            link, failed = commit_or_report(lambda: conversions.customer_link(customer, actor=current_user), form)
            if not failed:
                flash(_("The customer's own link is %(code)s: give them the address or the QR code.",
                        code=link.code), "success")
                return redirect(url_for(".link", link_id=link.id))
            status = failed
    return render_template("referrals/customer_link.html", form=form), status

