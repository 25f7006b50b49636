"""admin views of the distribution blueprint (see routes.py): partners, channels, API keys, members.

Thin views: parse, load, authorize with a named predicate, call one service, commit once, redirect.
A new API key or webhook secret is the one exception to post/redirect/get: it is rendered once in the
response to the POST that made it (only its hash, or nothing, is kept), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio.access import require, roles_required, step_up_required
from advisor_studio.accounts.models import User
from advisor_studio.distribution import queries, services
from advisor_studio.distribution.forms import (
    ChannelEditForm,
    ChannelForm,
    KeyIssueForm,
    KeyRevokeForm,
    MemberLinkForm,
    PartnerDeactivateForm,
    PartnerForm,
    SecretRegenerateForm,
    SimpleActionForm,
)
from advisor_studio.distribution.models import CHANNEL_PLATFORMS, PLATFORM_LABELS, Channel, Partner, PartnerApiKey
from advisor_studio.distribution.permissions import can_manage_api_keys, can_manage_channels, can_manage_partners
from advisor_studio.distribution.routes import bp
from advisor_studio.distribution.urlsafety import UnsafeURL
from advisor_studio.errors import DomainError, NotFound
from advisor_studio.extensions import db
from advisor_studio.web import commit_or_report, query_int, query_page

_PARTNER_FIELDS = ("name", "contact_name", "contact_email", "contact_phone", "webhook_url")


def _flash_domain_error(err: DomainError, form) -> None:
    for field, why in err.fields.items():
        if field in form:
            form[field].errors = [*form[field].errors, why]
    flash(err.message, "danger")


def _refused(err: DomainError, partner: Partner | None, form) -> None:
    """Roll back the refused change; a refused webhook URL (security-relevant) is still audited."""
    db.session.rollback()
    if isinstance(err, UnsafeURL):
        services.record_refused_webhook_url(partner, form.webhook_url.data, actor=current_user, reason=err.message)
        db.session.commit()
    _flash_domain_error(err, form)


def _active_filter() -> tuple[str, bool | None]:
    raw = request.args.get("active") or ""
    return (raw, {"yes": True, "no": False}.get(raw)) if raw in ("yes", "no") else ("", None)


def _shown_once(template: str, **context):
    """A page carrying a secret that exists nowhere else: never cached, never stored by the browser."""
    response = make_response(render_template(template, **context))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- partners -----------------------------------------------------------------------------------------


@bp.route("/admin/partners")
@roles_required("admin")
def partners():
    require(can_manage_partners(current_user))
    q = (request.args.get("q") or "").strip()[:100]
    active_raw, active = _active_filter()
    page = queries.partners_page(q=q, active=active, page=query_page(),
                                 per_page=current_app.config["PAGE_SIZE"])
    return render_template("distribution/admin/partners.html", page=page, q=q, active=active_raw)


@bp.route("/admin/partners/new", methods=["GET", "POST"])
@roles_required("admin")
@step_up_required
def partner_new():
    require(can_manage_partners(current_user))
    form = PartnerForm()
    if form.validate_on_submit():
        try:
            partner, raw_key = services.create_partner(
                form.name.data, actor=current_user, **{f: form[f].data for f in _PARTNER_FIELDS if f != "name"})
        except DomainError as err:
            _refused(err, None, form)
            return render_template("distribution/admin/partner_new.html", form=form), err.status
        db.session.commit()
        return _shown_once("distribution/admin/key_once.html", partner=partner, raw_key=raw_key, created=True)
    status = 400 if request.method == "POST" else 200
    return render_template("distribution/admin/partner_new.html", form=form), status


def _render_partner(partner: Partner, form=None, status: int = 200, **forms):
    defaults = {
        "deactivate_form": PartnerDeactivateForm(formdata=None),
        "reactivate_form": SimpleActionForm(formdata=None),
        "secret_form": SecretRegenerateForm(formdata=None),
        "key_form": KeyIssueForm(formdata=None),
        "revoke_form": KeyRevokeForm(formdata=None),
        "unlink_form": SimpleActionForm(formdata=None),
    }
    defaults.update(forms)
    link_form = defaults.pop("link_form", None) or MemberLinkForm(formdata=None)
    candidates = queries.linkable_mcn_users()
    link_form.user_id.choices = [(u.id, f"{u.name} · {u.email}") for u in candidates]
    return render_template(
        "distribution/admin/partner.html", partner=partner, form=form or PartnerForm(obj=partner),
        keys=queries.partner_keys(partner.id), members=queries.partner_members(partner.id),
        link_form=link_form, platform_labels=PLATFORM_LABELS, **defaults,
    ), status


@bp.route("/admin/partners/<int:partner_id>", methods=["GET", "POST"])
@roles_required("admin")
@step_up_required
def partner(partner_id: int):
    partner = db.get_or_404(Partner, partner_id)
    require(can_manage_partners(current_user))
    form = PartnerForm(obj=partner)
    if form.validate_on_submit():
        try:
            changes = services.update_partner(partner, actor=current_user,
                                              **{f: form[f].data for f in _PARTNER_FIELDS})
        except DomainError as err:
            _refused(err, partner, form)
            return _render_partner(partner, form, err.status)
        db.session.commit()
        flash(_("Changes saved.") if changes else _("Nothing changed."), "success" if changes else "info")
        return redirect(url_for(".partner", partner_id=partner.id))
    status = 400 if request.method == "POST" else 200
    return _render_partner(partner, form, status)


@bp.route("/admin/partners/<int:partner_id>/deactivate", methods=["POST"])
@roles_required("admin")
@step_up_required
def partner_deactivate(partner_id: int):
    partner = db.get_or_404(Partner, partner_id)
    require(can_manage_partners(current_user))
    form = PartnerDeactivateForm()
    if not form.validate_on_submit():
        flash(_("Give a reason and tick the box to deactivate this partner."), "danger")
        return _render_partner(partner, status=400, deactivate_form=form)
    _done, failed = commit_or_report(lambda: services.set_partner_active(partner, False, actor=current_user,
                                                                         reason=form.reason.data))
    if not failed:
        flash(_("%(name)s is deactivated: its API keys and download links no longer work.", name=partner.name),
              "success")
    return redirect(url_for(".partner", partner_id=partner.id))


@bp.route("/admin/partners/<int:partner_id>/reactivate", methods=["POST"])
@roles_required("admin")
@step_up_required
def partner_reactivate(partner_id: int):
    partner = db.get_or_404(Partner, partner_id)
    require(can_manage_partners(current_user))
    if SimpleActionForm().validate_on_submit():
        _done, failed = commit_or_report(lambda: services.set_partner_active(partner, True, actor=current_user))
        if not failed:
            flash(_("%(name)s is active again; its unrevoked keys work again.", name=partner.name), "success")
    return redirect(url_for(".partner", partner_id=partner.id))


@bp.route("/admin/partners/<int:partner_id>/webhook-secret", methods=["POST"])
@roles_required("admin")
@step_up_required
def partner_secret(partner_id: int):
    partner = db.get_or_404(Partner, partner_id)
    require(can_manage_partners(current_user))
    form = SecretRegenerateForm()
    if not form.validate_on_submit():
        flash(_("Tick the box to confirm a new webhook secret."), "danger")
        return _render_partner(partner, status=400, secret_form=form)
    secret = services.regenerate_webhook_secret(partner, actor=current_user)
    db.session.commit()
    return _shown_once("distribution/admin/secret_once.html", partner=partner, secret=secret)


# --- API keys -----------------------------------------------------------------------------------------


@bp.route("/admin/partners/<int:partner_id>/keys", methods=["POST"])
@roles_required("admin")
@step_up_required
def key_issue(partner_id: int):
    partner = db.get_or_404(Partner, partner_id)
    require(can_manage_api_keys(current_user, partner))
    form = KeyIssueForm()
    if not form.validate_on_submit():
        flash(_("The key was not issued: check the label."), "danger")
        return _render_partner(partner, status=400, key_form=form)
    raw_key, failed = commit_or_report(lambda: services.issue_api_key(partner, actor=current_user,
                                                                      label=form.label.data), form)
    if failed:
        return _render_partner(partner, status=failed, key_form=form)
    return _shown_once("distribution/admin/key_once.html", partner=partner, raw_key=raw_key, created=False)


@bp.route("/admin/partners/<int:partner_id>/keys/<int:key_id>/revoke", methods=["POST"])
@roles_required("admin")
@step_up_required
def key_revoke(partner_id: int, key_id: int):
    partner = db.get_or_404(Partner, partner_id)
    key = db.get_or_404(PartnerApiKey, key_id)
    if key.partner_id != partner.id:
        raise NotFound(_("This key does not belong to this partner."))
    require(can_manage_api_keys(current_user, partner))
    form = KeyRevokeForm()
    if not form.validate_on_submit():
        flash(_("Give a reason and tick the box to revoke the key %(prefix)s….", prefix=key.prefix), "danger")
        return _render_partner(partner, status=400, revoke_form=form)
    _done, failed = commit_or_report(lambda: services.revoke_api_key(key, actor=current_user, reason=form.reason.data))
    if not failed:
        flash(_("The key %(prefix)s… is revoked.", prefix=key.prefix), "success")
    return redirect(url_for(".partner", partner_id=partner.id, _anchor="keys"))


# --- members ------------------------------------------------------------------------------------------


@bp.route("/admin/partners/<int:partner_id>/members", methods=["POST"])
@roles_required("admin")
@step_up_required
def member_link(partner_id: int):
    partner = db.get_or_404(Partner, partner_id)
    require(can_manage_partners(current_user))
    form = MemberLinkForm()
    # Any user id may be posted; the service says clearly why a non-mcn user cannot be linked.
    form.user_id.choices = None
    form.user_id.validate_choice = False
    if not form.validate_on_submit():
        flash(_("Choose an MCN user to add."), "danger")
        return _render_partner(partner, status=400, link_form=form)
    user = db.session.get(User, form.user_id.data) if 0 < form.user_id.data < 2**31 else None
    if user is None:
        raise NotFound(_("No such user."))
    _done, failed = commit_or_report(lambda: services.set_user_partner(user, partner, actor=current_user, move=False))
    if failed:
        return _render_partner(partner, status=failed)
    flash(_("%(email)s now works for %(partner)s.", email=user.email, partner=partner.name), "success")
    return redirect(url_for(".partner", partner_id=partner.id, _anchor="members"))


@bp.route("/admin/partners/<int:partner_id>/members/<int:user_id>/unlink", methods=["POST"])
@roles_required("admin")
@step_up_required
def member_unlink(partner_id: int, user_id: int):
    partner = db.get_or_404(Partner, partner_id)
    user = db.get_or_404(User, user_id)
    require(can_manage_partners(current_user))
    if user.partner_id != partner.id:
        raise NotFound(_("This user does not belong to this partner."))
    if SimpleActionForm().validate_on_submit():
        services.set_user_partner(user, None, actor=current_user)
        db.session.commit()
        flash(_("%(email)s no longer works for %(partner)s.", email=user.email, partner=partner.name), "success")
    return redirect(url_for(".partner", partner_id=partner.id, _anchor="members"))


# --- channels -----------------------------------------------------------------------------------------


@bp.route("/admin/channels")
@roles_required("admin")
def channels():
    require(can_manage_channels(current_user))
    partner_id = query_int("partner", minimum=1)
    platform = request.args.get("platform") or ""
    if platform not in CHANNEL_PLATFORMS:
        platform = ""
    active_raw, active = _active_filter()
    page = queries.channels_page(partner_id=partner_id, platform=platform or None, active=active,
                                 page=query_page(), per_page=current_app.config["PAGE_SIZE"])
    return render_template("distribution/admin/channels.html", page=page, partner_id=partner_id,
                           platform=platform, active=active_raw, partners=queries.partner_choices(),
                           platform_labels=PLATFORM_LABELS, platforms=CHANNEL_PLATFORMS)


def _render_channel_form(form, channel: Channel | None, status: int = 200):
    return render_template("distribution/admin/channel_form.html", form=form, channel=channel,
                           platform_labels=PLATFORM_LABELS), status


@bp.route("/admin/channels/new", methods=["GET", "POST"])
@roles_required("admin")
def channel_new():
    require(can_manage_channels(current_user))
    form = ChannelForm()
    form.partner_id.choices = queries.partner_choices()
    if request.method == "GET":
        form.partner_id.data = query_int("partner", minimum=1)
    if form.partner_id.choices and form.validate_on_submit():
        partner = db.get_or_404(Partner, form.partner_id.data)
        channel, failed = commit_or_report(lambda: services.add_channel(
            partner, form.platform.data, form.handle.data, actor=current_user,
            follower_count=form.follower_count.data), form)
        if failed:
            return _render_channel_form(form, None, failed)
        flash(_("Channel %(handle)s added to %(partner)s.", handle=channel.handle, partner=partner.name), "success")
        return redirect(url_for(".channels", partner=partner.id))
    status = 400 if request.method == "POST" else 200
    return _render_channel_form(form, None, status)  # with no partner yet, the page says to create one


@bp.route("/admin/channels/<int:channel_id>", methods=["GET", "POST"])
@roles_required("admin")
def channel_edit(channel_id: int):
    channel = db.get_or_404(Channel, channel_id)
    require(can_manage_channels(current_user))
    form = ChannelEditForm(obj=channel)
    if form.validate_on_submit():
        changes, failed = commit_or_report(lambda: services.update_channel(
            channel, actor=current_user, follower_count=form.follower_count.data, active=form.active.data), form)
        if failed:
            return _render_channel_form(form, channel, failed)
        flash(_("Changes saved.") if changes else _("Nothing changed."), "success" if changes else "info")
        return redirect(url_for(".channel_edit", channel_id=channel.id))
    status = 400 if request.method == "POST" else 200
    return _render_channel_form(form, channel, status)
