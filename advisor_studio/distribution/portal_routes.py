"""The mcn portal (see routes.py): a partner's assets, their files, publication reports and take-downs.

Every object is loaded through a partner-scoped query (``queries.partner_asset``): another partner's
asset, cover or post does not exist for this user (404, never 403), so nothing about it leaks.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio import audit
from advisor_studio.access import require, roles_required
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution import queries, services
from advisor_studio.distribution.models import (
    ASSET_STATUS_LABELS,
    ASSET_STATUSES,
    PLATFORM_LABELS,
    Assignment,
    Partner,
    Publication,
)
from advisor_studio.distribution.permissions import (
    can_confirm_takedown,
    can_download_asset,
    can_report_publication,
    can_view_asset,
    is_partner_user,
)
from advisor_studio.distribution.portal_forms import (
    TAKEDOWN_STATE_LABELS,
    PublicationForm,
    TakedownForm,
    as_aware,
    local_now_value,
)
from advisor_studio.distribution.routes import bp
from advisor_studio.errors import DomainError, ValidationError
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import (
    Audience,
    approved_rendition,
    rendition_link,
    serve_approved_rendition,
)
from advisor_studio.integrity.models import FILE_COVER
from advisor_studio.referrals.sharing import approved_referral_url
from advisor_studio.web import query_int, query_page

PUBLICATIONS_PER_PAGE = 25


@bp.app_context_processor
def distribution_labels():
    return {"asset_status_labels": ASSET_STATUS_LABELS, "channel_platform_labels": PLATFORM_LABELS,
            "takedown_state_labels": TAKEDOWN_STATE_LABELS}


def _partner() -> Partner | None:
    """The active partner the signed-in mcn user works for, or None."""
    if not is_partner_user(current_user):
        return None
    partner = db.session.get(Partner, current_user.partner_id)
    return partner if partner is not None and partner.active else None


def _no_partner_page():
    # Not an empty list: an mcn user without a (working) partner must learn why nothing shows.
    linked = current_user.partner_id is not None
    return render_template("distribution/portal/no_partner.html", partner_inactive=linked)


def _choice(name: str, allowed) -> str | None:
    """A query parameter that must be one of ``allowed``; a clear 400 otherwise, absent gives None."""
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    if value not in allowed:
        raise ValidationError(_("“%(name)s” in the address is not one of the offered choices.", name=name),
                              fields={name: _("invalid")}, code="bad_query")
    return value


def _channel_filter(channels) -> int | None:
    channel_id = query_int("channel")
    if channel_id is not None and channel_id not in {c.id for c in channels}:
        raise ValidationError(_("This channel is not one of yours."), fields={"channel": _("invalid")},
                              code="bad_query")
    return channel_id


def _load_asset(asset_id: int):
    """This partner's asset, or 404 (also for an mcn user without a partner)."""
    partner = _partner()
    assignment = queries.partner_asset(partner.id, asset_id) if partner is not None else None
    if assignment is None:
        if db.session.get(Assignment, asset_id) is not None:
            # Another partner's asset: the user learns nothing (404), the audit trail records the probe.
            audit.record_refusal("portal.foreign_asset", "assignment", asset_id,
                                 details={"partner_id": current_user.partner_id})
        abort(404)
    require(can_view_asset(current_user, assignment))
    return assignment


def _approved_rendition(assignment):
    """The rendition this asset's approval covers (not whatever the package points to today)."""
    return approved_rendition(assignment.approval)


def _audience(assignment) -> Audience:
    # The mcn user travels in the link: it dies when they leave the partner, and every follow names them.
    return Audience(partner_id=assignment.partner_id, assignment_id=assignment.id, user_id=current_user.id)


# --- lists -------------------------------------------------------------------------------------------


@bp.route("/portal/assets")
@roles_required("mcn")
def assets():
    partner = _partner()
    if partner is None:
        return _no_partner_page()
    channels = queries.partner_channels(partner.id)
    filters = {"status": _choice("status", ASSET_STATUSES), "channel": _channel_filter(channels)}
    before_id = queries.decode_cursor(request.args.get("cursor"))
    items, next_id = queries.partner_assets(partner.id, status=filters["status"], channel_id=filters["channel"],
                                            before_id=before_id,
                                            limit=current_app.config.get("PORTAL_PAGE_SIZE", queries.PAGE_DEFAULT))
    return render_template(
        "distribution/portal/assets.html", partner=partner, channels=channels, items=items, filters=filters,
        counts=queries.partner_status_counts(partner.id, channel_id=filters["channel"]),
        next_cursor=queries.encode_cursor(next_id) if next_id else None, paged=before_id is not None,
        newest_args={k: v for k, v in request.args.items() if k != "cursor"}, statuses=ASSET_STATUSES,
        now=utcnow())


@bp.route("/portal/publications")
@roles_required("mcn")
def publications():
    partner = _partner()
    if partner is None:
        return _no_partner_page()
    channels = queries.partner_channels(partner.id)
    filters = {"state": _choice("state", queries.TAKEDOWN_STATES), "channel": _channel_filter(channels)}
    page = queries.partner_publications(partner.id, state=filters["state"], channel_id=filters["channel"],
                                        page=query_page(), per_page=PUBLICATIONS_PER_PAGE)
    return render_template("distribution/portal/publications.html", partner=partner, channels=channels,
                           page=page, filters=filters, states=queries.TAKEDOWN_STATES,
                           state_of=queries.publication_takedown_state)


# --- one asset ---------------------------------------------------------------------------------------


def _asset_page(assignment, *, publication_form=None, takedown_forms=None, status: int = 200):
    rendition = _approved_rendition(assignment)
    video_url = download_url = None
    if rendition is not None and can_download_asset(current_user, assignment):
        audience = _audience(assignment)
        video_url = rendition_link(rendition, audience)
        download_url = rendition_link(rendition, audience, filename=f"asset-{assignment.id}.mp4")
    if publication_form is None:
        publication_form = PublicationForm(formdata=None)
        publication_form.published_at.raw_data = [local_now_value()]
    forms = {}
    for publication in assignment.publications:
        form = (takedown_forms or {}).get(publication.id)
        if form is None:
            form = TakedownForm(formdata=None, publication_id=str(publication.id))
            form.removed_at.raw_data = [local_now_value()]
        forms[publication.id] = form
    manifest = assignment.approval.manifest or {}
    return render_template(
        "distribution/portal/asset.html", a=assignment, rendition=rendition, manifest=manifest,
        advisor=assignment.package.author, caption_text=manifest.get("caption") or "",
        hashtags_text=" ".join(f"#{tag}" for tag in manifest.get("hashtags") or []), video_url=video_url,
        download_url=download_url, referral_url=approved_referral_url(assignment.approval, assignment.channel_id),
        publication_form=publication_form, takedown_forms=forms, state_of=queries.publication_takedown_state,
        can_publish=can_report_publication(current_user, assignment),
        can_take_down=can_confirm_takedown(current_user, assignment),
        can_download=can_download_asset(current_user, assignment), now=utcnow(),
    ), status


def _show_error(err: DomainError, form) -> None:
    """Put the service's message next to the field it names, else at the top of the form."""
    placed = False
    for name, why in err.fields.items():
        if name in form and name != "csrf_token":
            form[name].errors = [*form[name].errors, why if placed else err.message]
            placed = True
    if not placed:
        form.general_error = err.message


@bp.route("/portal/assets/<int:asset_id>")
@roles_required("mcn")
def asset(asset_id: int):
    return _asset_page(_load_asset(asset_id))


@bp.route("/portal/assets/<int:asset_id>/cover.jpg")
@roles_required("mcn")
def asset_cover(asset_id: int):
    assignment = _load_asset(asset_id)
    rendition = _approved_rendition(assignment)
    if rendition is None:
        abort(404)
    # Checked on every request: a withdrawn or expired asset's cover answers 410.
    return serve_approved_rendition(rendition, _audience(assignment), file_kind=FILE_COVER)


@bp.route("/portal/assets/<int:asset_id>/publications", methods=["POST"])
@roles_required("mcn")
def publish(asset_id: int):
    assignment = _load_asset(asset_id)
    form = PublicationForm()
    if not form.validate_on_submit():
        return _asset_page(assignment, publication_form=form, status=400)
    try:
        services.report_publication(assignment, platform=assignment.channel.platform, post_url=form.post_url.data,
                                    published_at=as_aware(form.published_at.data), actor=current_user,
                                    user_id=current_user.id)
    except DomainError as err:
        db.session.rollback()
        assignment = _load_asset(asset_id)
        _show_error(err, form)
        return _asset_page(assignment, publication_form=form, status=err.status)
    db.session.commit()
    flash(_("Publication recorded. Thank you for reporting it."), "success")
    return redirect(url_for(".asset", asset_id=asset_id, _anchor="posts"))


@bp.route("/portal/assets/<int:asset_id>/takedowns", methods=["POST"])
@roles_required("mcn")
def takedown(asset_id: int):
    assignment = _load_asset(asset_id)
    form = TakedownForm()
    publication = None
    raw_id = form.publication_id.data or ""
    if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 9:  # an id the INTEGER column can hold
        publication = db.session.get(Publication, int(raw_id))
    if publication is None or publication.assignment_id != assignment.id:
        if publication is not None and publication.partner_id != assignment.partner_id:
            audit.record_refusal("portal.foreign_publication", "publication", publication.id,
                                 details={"partner_id": current_user.partner_id})
        abort(404)  # a post of another asset (or partner) does not exist here
    if not form.validate_on_submit():
        return _asset_page(assignment, takedown_forms={publication.id: form}, status=400)
    try:
        services.confirm_takedown(assignment, post_url=publication.post_url,
                                  removed_at=as_aware(form.removed_at.data), actor=current_user,
                                  user_id=current_user.id)
    except DomainError as err:
        db.session.rollback()
        assignment = _load_asset(asset_id)
        _show_error(err, form)
        return _asset_page(assignment, takedown_forms={publication.id: form}, status=err.status)
    db.session.commit()
    flash(_("Removal confirmed. Compliance sees it at once."), "success")
    return redirect(url_for(".asset", asset_id=asset_id, _anchor=f"post-{publication.id}"))

