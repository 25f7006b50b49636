"""Pages of the studio feature: the advisor's scripts, revisions, packages and overview.

Views are thin: parse the form, load with ``db.get_or_404``, ``require`` a predicate, call the
service, commit once, redirect. A failed action re-renders its page with the error and the
status of the domain error (nothing is committed).
"""

from __future__ import annotations

import functools

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import SelectChoice

from advisor_studio.access import login_required, require, roles_required
from advisor_studio.compliance import queries as compliance_queries
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.highlight import mark_findings
from advisor_studio.compliance.models import ReviewComment
from advisor_studio.compliance.permissions import can_reply
from advisor_studio.distribution import queries as distribution_queries
from advisor_studio.distribution.models import PLATFORM_LABELS, PLATFORMS
from advisor_studio.distribution.permissions import can_view_package_distribution
from advisor_studio.errors import DomainError, error_response
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import Audience, approved_rendition, default_filename, rendition_link
from advisor_studio.integrity.models import FILE_VIDEO
from advisor_studio.studio import queries, services, states
from advisor_studio.studio.forms import ActionForm, ArchiveForm, PackageForm, ReplyForm, ScriptForm
from advisor_studio.studio.models import (
    BODY_MAX,
    CAPTION_MAX,
    PACKAGE_EDITABLE,
    PACKAGE_IN_PROGRESS,
    PACKAGE_OPEN,
    PACKAGE_STATUSES,
    PKG_APPROVED,
    SCRIPT_EDITABLE,
    SCRIPT_STATUSES,
    Package,
    Script,
)
from advisor_studio.studio.permissions import (
    can_download_approved_master,
    can_edit_package,
    can_edit_script,
    can_view_package,
    can_view_script,
    can_write_scripts,
)
from advisor_studio.studio.textdiff import diff_counts, side_by_side
from advisor_studio.video import services as video_services
from advisor_studio.web import query_int, query_page

bp = Blueprint("studio", __name__, url_prefix="/studio")

DIFF_FIELDS = ("title", "body", "caption", "hashtags")


def platform_names(platforms) -> str:
    """Display names of platform codes, in the order of PLATFORMS."""
    return ", ".join(str(PLATFORM_LABELS[p]) for p in PLATFORMS if p in (platforms or []))


@bp.context_processor
def studio_helpers():
    return {"mark_findings": mark_findings, "platform_names": platform_names,
            "speaking_stats": services.speaking_stats, "speaking_rate": services.SPEAKING_CHARS_PER_SECOND}


@bp.errorhandler(RequestEntityTooLarge)
def form_too_large(err):
    """A text field beyond the form memory limit is bad input (400), not an oversized upload."""
    db.session.rollback()
    if (request.content_length or 0) > (current_app.config.get("MAX_CONTENT_LENGTH") or float("inf")):
        return error_response(413)
    return error_response(400, _("The text you sent is far too long: a script may have at most %(body)d "
                                 "characters and a caption %(caption)d. Nothing was saved.",
                                 body=BODY_MAX, caption=CAPTION_MAX), "too_large")


def _page_number() -> int:
    return query_page()


def _per_page() -> int:
    return current_app.config["PAGE_SIZE"]


def _status(default: int = 200) -> int:
    return 400 if request.method == "POST" else default


def _field_errors(err: DomainError, form) -> None:
    for name, why in err.fields.items():
        if form is not None and name in form:
            form[name].errors = list(form[name].errors) + [why]


# --- overview and lists --------------------------------------------------------------------------


@bp.route("/")
@roles_required("advisor")
def my_content():
    q = (request.args.get("q") or "").strip()[:100]
    kind = request.args.get("kind") if request.args.get("kind") in ("script", "package") else ""
    state = request.args.get("state") if request.args.get("state") in queries.STATE_GROUPS else ""
    page = queries.content_overview(current_user, q=q, kind=kind, state=state, page=_page_number(),
                                      per_page=_per_page())
    return render_template("studio/my_content.html", page=page, q=q, kind=kind, state=state)


@bp.route("/scripts")
@roles_required("advisor")
def scripts():
    q = (request.args.get("q") or "").strip()[:100]
    status = request.args.get("status") if request.args.get("status") in SCRIPT_STATUSES else ""
    stmt = queries.my_scripts(current_user, q=q, status=status)
    page = db.paginate(stmt, page=_page_number(), per_page=_per_page(), error_out=False)
    return render_template("studio/scripts.html", page=page, q=q, status=status, statuses=SCRIPT_STATUSES)


@bp.route("/packages")
@roles_required("advisor")
def packages():
    q = (request.args.get("q") or "").strip()[:100]
    status = request.args.get("status") if request.args.get("status") in PACKAGE_STATUSES else ""
    stmt = queries.my_packages(current_user, q=q, status=status)
    page = db.paginate(stmt, page=_page_number(), per_page=_per_page(), error_out=False)
    return render_template("studio/packages.html", page=page, q=q, status=status, statuses=PACKAGE_STATUSES,
                           extras=queries.package_list_extras(page.items))


# --- scripts -------------------------------------------------------------------------------------


def _script_values(form: ScriptForm) -> dict:
    return {"title": form.title.data, "body": form.body.data, "caption": form.caption.data,
            "hashtags": form.hashtags.data, "platforms": form.platforms.data}


def _fill_script_form(form: ScriptForm, script: Script) -> None:
    form.title.data, form.body.data, form.caption.data = script.title, script.body, script.caption
    form.hashtags.data = " ".join(f"#{t}" for t in script.hashtags or [])
    form.platforms.data = list(script.platforms or [])


def _script_page(script: Script, form: ScriptForm, *, report=None, report_texts=None, report_kind=None,
                 error: DomainError | None = None, archive_form=None, reply_form=None, status: int = 200):
    revision = script.latest_revision
    if report is None and revision is not None and revision.scan is not None:
        # Without a fresh pre-check, show what the scan of the newest submission found.
        report, report_texts, report_kind = revision.scan.findings, services.script_fields(revision), "revision"
    editable = can_edit_script(current_user, script) and script.status in SCRIPT_EDITABLE
    packages_made = queries.packages_of_script(script)
    # The advisor's next step after pre-approval: continue the package already made from the
    # pre-approved revision (newest first), or make one.
    approved = script.approved_revision
    next_package = next((p for p in packages_made if approved is not None and p.script_revision_id == approved.id
                         and p.status in PACKAGE_IN_PROGRESS), None)
    return render_template(
        "studio/script.html", script=script, form=form, editable=editable,
        can_edit=can_edit_script(current_user, script), report=report, report_texts=report_texts,
        report_kind=report_kind, error=error, action_form=ActionForm(), archive_form=archive_form or ArchiveForm(),
        reviews=compliance_queries.subject_reviews(script_id=script.id), threads=compliance_queries.comment_threads,
        reply=_reply_target(url_for(".script_reply", script_id=script.id), script, reply_form),
        packages_made=packages_made, next_package=next_package,
        archivable="archived" in states.SCRIPT_TRANSITIONS.get(script.status, {}),
    ), status


@bp.route("/scripts/new", methods=["GET", "POST"])
@roles_required("advisor")
def script_new():
    require(can_write_scripts(current_user))
    form = ScriptForm()
    if form.validate_on_submit():
        try:
            script = services.create_script(current_user, **_script_values(form))
        except DomainError as err:
            db.session.rollback()
            _field_errors(err, form)
            return render_template("studio/script_new.html", form=form, error=err), err.status
        db.session.commit()
        flash(_("Draft saved."), "success")
        precheck = request.form.get("action") == "precheck"
        return redirect(url_for(".script", script_id=script.id, precheck=1 if precheck else None,
                                _anchor="findings" if precheck else None))
    return render_template("studio/script_new.html", form=form, error=None), _status()


@bp.route("/scripts/<int:script_id>", methods=["GET", "POST"])
@roles_required("advisor", "compliance", "admin")
def script(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_view_script(current_user, script))
    if request.method == "POST":
        require(can_edit_script(current_user, script))
    form = ScriptForm()
    if request.method == "GET":
        _fill_script_form(form, script)
        if request.args.get("precheck") and can_edit_script(current_user, script):
            return _script_page(script, form, report=services.precheck_script(script),
                                report_texts=services.script_fields(script), report_kind="draft")
        return _script_page(script, form)
    if not form.validate_on_submit():
        return _script_page(script, form, status=400)
    try:
        services.update_script(script, current_user, **_script_values(form))
    except DomainError as err:
        db.session.rollback()
        _field_errors(err, form)
        return _script_page(script, form, error=err, status=err.status)
    db.session.commit()
    flash(_("Draft saved."), "success")
    return redirect(url_for(".script", script_id=script.id))


@bp.route("/scripts/<int:script_id>/precheck", methods=["POST"])
@roles_required("advisor")
def script_precheck(script_id: int):
    """Save the editor's text, then show the pre-check of it (GET ?precheck=1 runs the scan)."""
    script = db.get_or_404(Script, script_id)
    require(can_edit_script(current_user, script))
    form = ScriptForm()
    if not form.validate_on_submit():
        return _script_page(script, form, status=400)
    try:
        services.update_script(script, current_user, **_script_values(form))
    except DomainError as err:
        db.session.rollback()
        _field_errors(err, form)
        return _script_page(script, form, error=err, status=err.status)
    db.session.commit()
    return redirect(url_for(".script", script_id=script.id, precheck=1, _anchor="findings"))


@bp.route("/scripts/<int:script_id>/submit", methods=["POST"])
@roles_required("advisor")
def script_submit(script_id: int):
    """Save the editor's text and submit it; blocking findings refuse both (nothing is stored)."""
    script = db.get_or_404(Script, script_id)
    require(can_edit_script(current_user, script))
    form = ScriptForm()
    if not form.validate_on_submit():
        return _script_page(script, form, status=400)
    try:
        services.update_script(script, current_user, **_script_values(form))
        revision = services.submit_script(script, current_user)
    except services.BlockingFindings as err:
        texts = services.script_fields(script)  # the texts the findings point into, before rollback
        db.session.rollback()
        return _script_page(script, form, report=err.report, report_texts=texts, report_kind="draft", error=err,
                            status=err.status)
    except DomainError as err:
        db.session.rollback()
        _field_errors(err, form)
        return _script_page(script, form, error=err, status=err.status)
    db.session.commit()
    flash(_("Revision %(n)d submitted for compliance pre-approval.", n=revision.number), "success")
    return redirect(url_for(".script", script_id=script.id))


@bp.route("/scripts/<int:script_id>/recall", methods=["POST"])
@roles_required("advisor")
def script_recall(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_edit_script(current_user, script))
    form = ActionForm()
    if form.validate_on_submit():
        try:
            services.recall_script(script, current_user)
        except DomainError as err:
            db.session.rollback()
            return _script_edit_error(script, err)
        db.session.commit()
        flash(_("The script is back in draft; its review was closed."), "success")
    return redirect(url_for(".script", script_id=script.id))


@bp.route("/scripts/<int:script_id>/archive", methods=["POST"])
@roles_required("advisor")
def script_archive(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_edit_script(current_user, script))
    archive_form = ArchiveForm()
    if not archive_form.validate_on_submit():
        form = ScriptForm()
        _fill_script_form(form, script)
        return _script_page(script, form, archive_form=archive_form, status=400)
    try:
        services.archive_script(script, current_user, archive_form.reason.data or "")
    except DomainError as err:
        db.session.rollback()
        return _script_edit_error(script, err)
    db.session.commit()
    flash(_("Script archived."), "success")
    return redirect(url_for(".script", script_id=script.id))


def _saved_script_page(script: Script, **kwargs):
    """The script page with the editor showing the saved script (after an action elsewhere on it)."""
    form = ScriptForm(formdata=None)
    _fill_script_form(form, script)
    return _script_page(script, form, **kwargs)


def _script_edit_error(script: Script, err: DomainError):
    return _saved_script_page(script, error=err, status=err.status)


@bp.route("/scripts/<int:script_id>/revisions")
@roles_required("advisor", "compliance", "admin")
def script_revisions(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_view_script(current_user, script))
    outcomes: dict[int, object] = {}
    for review in reversed(compliance_queries.subject_reviews(script_id=script.id)):  # the newest review wins
        outcomes[review.script_revision_id] = review
    revisions = sorted(script.revisions, key=lambda r: r.number, reverse=True)
    return render_template("studio/revisions.html", script=script, revisions=revisions, outcomes=outcomes)


@bp.route("/scripts/<int:script_id>/diff")
@roles_required("advisor", "compliance", "admin")
def script_diff(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_view_script(current_user, script))
    revisions = {r.number: r for r in script.revisions}
    numbers = sorted(revisions)
    a, b = query_int("a", minimum=1), query_int("b", minimum=1)
    if len(numbers) < 2 and a is None and b is None:
        return render_template("studio/diff.html", script=script, numbers=numbers, old=None, new=None, fields=[])
    b = b if b is not None else numbers[-1]
    if a is None:
        earlier = [n for n in numbers if n < b]
        a = earlier[-1] if earlier else numbers[0]
    if a not in revisions or b not in revisions:
        abort(404)
    old, new = revisions[a], revisions[b]
    fields = []
    for name in DIFF_FIELDS:
        before, after = services.script_fields(old)[name], services.script_fields(new)[name]
        fields.append({"name": name, "changed": before != after, "rows": side_by_side(before, after),
                       "counts": diff_counts(before, after)})
    return render_template("studio/diff.html", script=script, numbers=numbers, old=old, new=new, fields=fields)


# --- replies to reviewers' comments ----------------------------------------------------------------


def _reply_target(action: str, content: Script | Package, form: ReplyForm | None) -> dict | None:
    """Where the reply forms of a script or package page post, when the user may answer there now."""
    if not can_reply(current_user, content):
        return None
    return {"action": action, "form": form, "to": form.parent_id.data if form is not None else None}


def _comment_on(comment_id: int, content: Script | Package) -> ReviewComment:
    """The comment ``comment_id`` if it belongs to a review round of ``content``; 404 otherwise (a
    comment on someone else's content, or on another item of one's own, is not found here)."""
    comment = db.session.get(ReviewComment, comment_id)
    if comment is None or comment.review.subject is not content:
        abort(404)
    return comment


def _reply(content: Script | Package, page, endpoint: str, **args):
    """Post the author's reply under a comment of their script or package: validate, one audited
    service call, commit, back to the page at the new reply; a refusal re-renders the page."""
    form = ReplyForm()
    valid = form.validate_on_submit()
    parent = _comment_on(form.parent_id.data, content) if form.parent_id.data and not form.parent_id.errors else None
    if not valid or parent is None:
        flash(_("The reply was not sent; see the form below."), "danger")
        return page(reply_form=form, status=400)
    try:
        reply = compliance.add_comment(parent.review, current_user, form.body.data, parent=parent)
    except DomainError as err:
        db.session.rollback()
        return page(reply_form=form, error=err, status=err.status)
    db.session.commit()
    flash(_("Reply sent. The reviewer sees it in the thread."), "success")
    return redirect(url_for(endpoint, _anchor=f"comment-{reply.id}", **args))


@bp.route("/scripts/<int:script_id>/replies", methods=["POST"])
@roles_required("advisor")
def script_reply(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_edit_script(current_user, script))
    return _reply(script, functools.partial(_saved_script_page, script), ".script", script_id=script.id)


@bp.route("/packages/<int:package_id>/replies", methods=["POST"])
@roles_required("advisor")
def package_reply(package_id: int):
    package = db.get_or_404(Package, package_id)
    require(can_edit_package(current_user, package))
    return _reply(package, functools.partial(_saved_package_page, package), ".package", package_id=package.id)


# --- packages ------------------------------------------------------------------------------------


@bp.route("/scripts/<int:script_id>/packages", methods=["POST"])
@roles_required("advisor")
def package_create(script_id: int):
    script = db.get_or_404(Script, script_id)
    require(can_edit_script(current_user, script))
    if ActionForm().validate_on_submit():
        try:
            package = services.create_package(script, current_user)
        except DomainError as err:
            db.session.rollback()
            return _script_edit_error(script, err)
        db.session.commit()
        flash(_("Package created from revision %(n)d. Upload the video and choose the channels.",
                n=package.script_revision.number), "success")
        return redirect(url_for(".package", package_id=package.id))
    return redirect(url_for(".script", script_id=script.id))


def _package_form(groups) -> PackageForm:
    form = PackageForm()
    form.channels.choices = [SelectChoice(c.id, c.label) for _partner, channels in groups for c in channels]
    return form


def _fill_package_form(form: PackageForm, package: Package) -> None:
    form.title.data, form.caption.data = package.title, package.caption
    form.hashtags.data = " ".join(f"#{t}" for t in package.hashtags or [])
    form.channels.data = [c.id for c in package.channels]
    form.cover_time_s.data = package.cover_time_s
    form.title_card.data = package.title_card


def _package_page(package: Package, form: PackageForm, groups, *, report=None, report_texts=None,
                  error: DomainError | None = None, archive_form=None, reply_form=None, status: int = 200):
    scan = queries.latest_scan("package", package.id)
    approval = queries.latest_approval(package)
    checklist = {
        "script": services.script_is_preapproved(package.script_revision),
        "rendition": package.rendition is not None and package.rendition.is_ready
        and video_services.rendition_is_current(package),
        "channels": bool(package.channels),
    }
    if report is None and scan is not None:
        report, report_texts = scan.findings, compliance.package_fields(package)
    subtitle_lines = (scan.findings.get("subtitle_lines") if scan is not None else None)
    return render_template(
        "studio/package.html", package=package, form=form, channel_groups=groups,
        editable=can_edit_package(current_user, package) and package.status in PACKAGE_EDITABLE,
        can_edit=can_edit_package(current_user, package), checklist=checklist,
        submittable=can_edit_package(current_user, package) and package.status in PACKAGE_OPEN,
        ready=all(checklist.values()),
        scan=scan, report=report,
        report_texts=report_texts, subtitle_lines=subtitle_lines,
        preview_lines=services.subtitle_lines_not_in_script(package) if scan is None else None,
        approval=approval, approval_live=approval is not None and compliance.live_approval(package) is not None,
        can_download_master=can_download_approved_master(current_user, package),
        reviews=compliance_queries.subject_reviews(package_id=package.id),
        threads=compliance_queries.comment_threads,
        reply=_reply_target(url_for(".package_reply", package_id=package.id), package, reply_form), error=error,
        action_form=ActionForm(), archive_form=archive_form or ArchiveForm(),
        archivable="archived" in states.PACKAGE_TRANSITIONS.get(package.status, {}),
        distribution=(distribution_queries.package_distribution(package.id)
                      if can_view_package_distribution(current_user, package) else None),
    ), status


@bp.route("/packages/<int:package_id>", methods=["GET", "POST"])
@roles_required("advisor", "compliance", "admin")
def package(package_id: int):
    package = db.get_or_404(Package, package_id)
    require(can_view_package(current_user, package))
    if request.method == "POST":
        require(can_edit_package(current_user, package))
    groups = distribution_queries.channel_groups()
    form = _package_form(groups)
    if request.method == "GET":
        _fill_package_form(form, package)
        return _package_page(package, form, groups)
    if not form.validate_on_submit():
        return _package_page(package, form, groups, status=400)
    if package.status == PKG_APPROVED and not form.confirm_void.data:
        form.confirm_void.errors = [_("Confirm that saving voids the approval.")]
        return _package_page(package, form, groups, status=400)
    try:
        services.update_package(
            package, current_user, title=form.title.data, caption=form.caption.data, hashtags=form.hashtags.data,
            channel_ids=form.channels.data, subtitles=form.subtitle_bytes(),
            clear_subtitles=form.remove_subtitles.data, cover_time_s=form.cover_time_s.data,
            title_card=form.title_card.data)
    except DomainError as err:
        db.session.rollback()
        _field_errors(err, form)
        return _package_page(package, form, groups, error=err, status=err.status)
    db.session.commit()
    if request.form.get("then_submit") == "1" and package.status in PACKAGE_OPEN:
        # "Submit" pressed with the edit form's state (ticked channels, a new caption): saved first,
        # so nothing typed is lost whether or not the submission then goes through.
        return _submit_package(package, saved=True)
    flash(_("Package saved."), "success")
    return redirect(url_for(".package", package_id=package.id))


def _saved_package_page(package: Package, **kwargs):
    """The package page with the form showing the saved package (after an action elsewhere on it)."""
    groups = distribution_queries.channel_groups()
    form = _package_form(groups)
    _fill_package_form(form, package)
    return _package_page(package, form, groups, **kwargs)


def _package_action_error(package: Package, err: DomainError, **kwargs):
    return _saved_package_page(package, error=err, status=err.status, **kwargs)


@bp.route("/packages/<int:package_id>/approved-master.mp4")
@login_required
def package_master(package_id: int):
    """The approved master of a package, as a fresh signed link bound to this user: the file then goes
    through the checks of every approved download (approval in force, audience, SHA-256, download log)."""
    package = db.session.get(Package, package_id)
    if package is None or not can_download_approved_master(current_user, package):
        abort(404)  # another advisor's package does not exist for this user
    approval = compliance.live_approval(package)
    rendition = approved_rendition(approval)
    if rendition is None:
        abort(404, _("This package has no approval in force, so there is no approved master to download."))
    if package.author_id == current_user.id and current_user.has_role("advisor"):
        role = "advisor"
    else:
        role = "compliance" if current_user.has_role("compliance") else "admin"
    url = rendition_link(rendition, Audience(user_id=current_user.id, role=role),
                         filename=default_filename(rendition, FILE_VIDEO))
    return redirect(url)


@bp.route("/packages/<int:package_id>/submit", methods=["POST"])
@roles_required("advisor")
def package_submit(package_id: int):
    package = db.get_or_404(Package, package_id)
    require(can_edit_package(current_user, package))
    if ActionForm().validate_on_submit():
        return _submit_package(package)
    return redirect(url_for(".package", package_id=package.id))


def _submit_package(package: Package, *, saved: bool = False):
    try:
        services.submit_package(package, current_user)
    except services.BlockingFindings as err:
        texts = compliance.package_fields(package)
        db.session.rollback()
        if saved:
            flash(_("Your changes were saved, but the package was not submitted."), "warning")
        return _package_action_error(package, err, report=err.report, report_texts=texts)
    except DomainError as err:
        db.session.rollback()
        if saved:
            flash(_("Your changes were saved, but the package was not submitted."), "warning")
        return _package_action_error(package, err)
    db.session.commit()
    flash(_("Package saved and submitted for final review.") if saved
          else _("Package submitted for final review."), "success")
    return redirect(url_for(".package", package_id=package.id))


@bp.route("/packages/<int:package_id>/recall", methods=["POST"])
@roles_required("advisor")
def package_recall(package_id: int):
    package = db.get_or_404(Package, package_id)
    require(can_edit_package(current_user, package))
    if ActionForm().validate_on_submit():
        try:
            services.recall_package(package, current_user)
        except DomainError as err:
            db.session.rollback()
            return _package_action_error(package, err)
        db.session.commit()
        flash(_("The package is back in draft; its review was closed."), "success")
    return redirect(url_for(".package", package_id=package.id))


@bp.route("/packages/<int:package_id>/archive", methods=["POST"])
@roles_required("advisor")
def package_archive(package_id: int):
    package = db.get_or_404(Package, package_id)
    require(can_edit_package(current_user, package))
    archive_form = ArchiveForm()
    if not archive_form.validate_on_submit():
        groups = distribution_queries.channel_groups()
        form = _package_form(groups)
        _fill_package_form(form, package)
        return _package_page(package, form, groups, archive_form=archive_form, status=400)
    try:
        services.archive_package(package, current_user, archive_form.reason.data or "")
    except DomainError as err:
        db.session.rollback()
        return _package_action_error(package, err)
    db.session.commit()
    flash(_("Package archived."), "success")
    return redirect(url_for(".package", package_id=package.id))
