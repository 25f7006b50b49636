"""Pages of the compliance feature: review queue, review page, approved list, lexicon."""

from __future__ import annotations

import csv
import io
import tempfile

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from advisor_studio import audit
from advisor_studio.access import fresh_confirmation, require, roles_required, step_up_required
from advisor_studio.compliance import evidence, queries, reasons, services
from advisor_studio.compliance.forms import (
    CSV_MAX_BYTES,
    DECISION_LABELS,
    FIELD_LABELS,
    KIND_LABELS,
    PLATFORM_LABELS,
    SEVERITY_LABELS,
    STAGE_LABELS,
    ClaimForm,
    CommentForm,
    DecisionForm,
    ImportForm,
    ReleaseForm,
    RemoveRuleForm,
    RuleForm,
    TryScannerForm,
    WithdrawForm,
)
from advisor_studio.compliance.highlight import mark_findings
from advisor_studio.compliance.models import STAGES, LexiconRule, Review, ReviewComment
from advisor_studio.compliance.permissions import (
    can_decide,
    can_export_evidence,
    can_manage_lexicon,
    can_view_rendition,
    can_view_review,
    can_withdraw,
    can_work_queue,
)
from advisor_studio.compliance.scanner import PLATFORMS
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution import queries as distribution_queries
from advisor_studio.distribution.permissions import can_view_package_distribution
from advisor_studio.errors import DomainError, PermissionDenied
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import serve_rendition_in_app
from advisor_studio.web import query_int, query_page

bp = Blueprint("compliance", __name__, url_prefix="/compliance")

PAGE_SIZES = (25, 50, 100)
AGE_CHOICES = (24, 72, 168)
SORTS = ("due", "priority", "oldest", "newest")


@bp.app_context_processor
def compliance_labels():
    return {"platform_labels": PLATFORM_LABELS, "stage_labels": STAGE_LABELS, "decision_labels": DECISION_LABELS,
            "kind_labels": KIND_LABELS, "severity_labels": SEVERITY_LABELS, "field_labels": FIELD_LABELS,
            "can_export_evidence": can_export_evidence, "finding_view": reasons.view,
            "category_label": reasons.category_label, "findings_with_titles": reasons.with_titles,
            "version_note": queries.version_note, "comment_max": services.COMMENT_MAX}


def _flash_domain_error(err: DomainError, form=None) -> None:
    for field, why in err.fields.items():
        if form is not None and field in form:
            form[field].errors = list(form[field].errors) + [why]
    flash(err.message, "danger")


def _arg(name: str, allowed=None, limit: int = 100) -> str:
    value = (request.args.get(name) or "").strip()[:limit]
    return value if allowed is None or value in allowed else ""


def _int_arg(name: str, allowed=None) -> int | None:
    number = query_int(name)
    return number if allowed is None or number in allowed else None


def _per_page() -> int:
    return _int_arg("per_page", PAGE_SIZES) or current_app.config.get("PAGE_SIZE", 25)


# --- queue --------------------------------------------------------------------------------------


@bp.route("/queue")
@roles_required("compliance")
def queue():
    require(can_work_queue(current_user))
    now = utcnow()
    filters = {
        "stage": _arg("stage", STAGES), "platform": _arg("platform", PLATFORMS),
        "advisor": _int_arg("advisor"), "age": _int_arg("age", AGE_CHOICES),
        "priority": _arg("priority", ("high",)), "overdue": _arg("overdue", ("1",)),
        "mine": _arg("mine", ("1",)), "sort": _arg("sort", SORTS) or "due",
    }
    page = queries.paginate_open_reviews(
        page=query_page(), per_page=_per_page(), stage=filters["stage"], platform=filters["platform"],
        advisor_id=filters["advisor"], older_than_hours=filters["age"], high_priority=bool(filters["priority"]),
        overdue=bool(filters["overdue"]), claimed_by_id=current_user.id if filters["mine"] else None,
        sort=filters["sort"], now=now)
    return render_template("compliance/queue.html", page=page, filters=filters, now=now,
                           counts=queries.queue_counts(now), advisors=queries.queue_advisors(),
                           platforms=sorted(PLATFORMS), age_choices=AGE_CHOICES, page_sizes=PAGE_SIZES)


# --- review page --------------------------------------------------------------------------------


def _load_review(review_id: int):
    review = queries.load_review(review_id)
    if review is None:
        abort(404)
    return review


def _render_review(review, *, status: int = 200, decision_form=None, comment_form=None):
    context = queries.review_page(review, current_user)
    decision_form = decision_form or DecisionForm(formdata=None)
    # The decision is bound to exactly what this page shows.
    decision_form.manifest_sha256.data = context["current_manifest_sha256"]
    distribution = None
    if review.package_id is not None and can_view_package_distribution(current_user, review.package):
        distribution = distribution_queries.package_distribution(review.package_id)
    return render_template("compliance/review.html", **context, decision_form=decision_form, distribution=distribution,
                           comment_form=comment_form or CommentForm(formdata=None), claim_form=ClaimForm(),
                           release_form=ReleaseForm()), status


@bp.route("/reviews/<int:review_id>")
@roles_required("advisor", "compliance")
def review(review_id: int):
    review = _load_review(review_id)
    require(can_view_review(current_user, review))
    return _render_review(review)


@bp.route("/reviews/<int:review_id>/rendition.mp4")
@roles_required("advisor", "compliance")
def rendition(review_id: int):
    from advisor_studio.video.models import Rendition

    review = db.get_or_404(Review, review_id)
    require(can_view_rendition(current_user, review))
    # The rendition pinned in the submitted manifest, not whatever the package points to now.
    item = db.session.get(Rendition, (review.manifest or {}).get("rendition_id") or 0)
    if item is None or not item.storage_key:
        abort(404)
    return serve_rendition_in_app(item, current_user)


def _claim_action(review_id: int, form_class, action, message: str, category: str):
    """Claim or release: the same load, authorize, validate, call, commit and redirect."""
    review = db.get_or_404(Review, review_id)
    require(can_decide(current_user, review))
    if form_class().validate_on_submit():
        try:
            action(review, current_user)
        except PermissionDenied:
            raise
        except DomainError as err:
            # Refused (someone else holds the claim, or won it at the same moment): say so with
            # the error's status on the review page as it is now, not with a redirect.
            db.session.rollback()
            if err.code == "claimed":
                # Trying to take over a colleague's live claim is a refused action worth a trace.
                audit.record_refusal("review.claim_refused", "review", review_id, actor=current_user,
                                     details={"reason": err.code})
            _flash_domain_error(err)
            return _render_review(_load_review(review_id), status=err.status)
        db.session.commit()
        flash(message, category)
    return redirect(url_for(".review", review_id=review_id))


@bp.route("/reviews/<int:review_id>/claim", methods=["POST"])
@roles_required("compliance")
def claim(review_id: int):
    return _claim_action(review_id, ClaimForm, services.claim,
                         _("You are reviewing this item now; others see it as claimed."), "success")


@bp.route("/reviews/<int:review_id>/release", methods=["POST"])
@roles_required("compliance")
def release(review_id: int):
    return _claim_action(review_id, ReleaseForm, services.release, _("The item is back in the queue."), "info")


@bp.route("/reviews/<int:review_id>/comments", methods=["POST"])
@roles_required("advisor", "compliance")
def comment(review_id: int):
    review = _load_review(review_id)
    # Officers and the author; whether the author may still write (the content is in discussion) is
    # the service's rule, answered with 409 and a sentence that says why.
    require(can_view_review(current_user, review))
    form = CommentForm()
    if not form.validate_on_submit():
        flash(_("The comment could not be saved; see the form below."), "danger")
        return _render_review(review, status=400, comment_form=form)
    parent = db.get_or_404(ReviewComment, form.parent_id.data) if form.parent_id.data else None
    try:
        added = services.add_comment(
            review, current_user, form.body.data, parent=parent, anchor_field=form.anchor_field.data or None,
            anchor_start=form.anchor_start.data, anchor_end=form.anchor_end.data, timecode_ms=form.timecode_ms.data)
    except PermissionDenied:
        raise
    except DomainError as err:
        db.session.rollback()
        _flash_domain_error(err, form)
        return _render_review(_load_review(review_id), status=err.status, comment_form=form)
    db.session.commit()
    flash(_("Comment added."), "success")
    return redirect(url_for(".review", review_id=review_id, _anchor=f"comment-{added.id}"))


@bp.route("/reviews/<int:review_id>/decision", methods=["POST"])
@roles_required("compliance")
@step_up_required
def decide(review_id: int):
    review = _load_review(review_id)
    require(can_decide(current_user, review))
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(_("The decision was not recorded; see the form below."), "danger")
        return _render_review(review, status=400, decision_form=form)
    signed_factor, signed_at = fresh_confirmation() or (None, None)  # step_up_required checked it
    try:
        services.decide(review, current_user, form.decision.data, form.reason.data or "",
                        expected_manifest_sha256=form.manifest_sha256.data, signed_factor=signed_factor,
                        signed_at=signed_at)
    except PermissionDenied:
        raise
    except DomainError as err:
        db.session.rollback()
        _flash_domain_error(err, form)
        return _render_review(_load_review(review_id), status=err.status, decision_form=form)
    db.session.commit()
    flash(_("Decision recorded: %(decision)s.", decision=DECISION_LABELS[form.decision.data]), "success")
    return redirect(url_for(".queue"))


# --- approved list ------------------------------------------------------------------------------


@bp.route("/approved")
@roles_required("compliance")
def approved():
    require(can_work_queue(current_user))
    now = utcnow()
    filters = {"q": _arg("q"), "platform": _arg("platform", PLATFORMS), "flagged": _arg("flagged", ("1",)),
               "expiring": _arg("expiring", ("1",))}
    stmt = queries.live_approvals_query(q=filters["q"], platform=filters["platform"],
                                          flagged_only=bool(filters["flagged"]),
                                          expiring_only=bool(filters["expiring"]), now=now)
    page = db.paginate(stmt, page=query_page(), per_page=_per_page(), error_out=False)
    return render_template("compliance/approved.html", page=page, filters=filters, now=now,
                           platforms=sorted(PLATFORMS), expiring_days=queries.EXPIRING_DAYS,
                           withdraw_form=WithdrawForm(formdata=None))


@bp.route("/packages/<int:package_id>/withdraw", methods=["POST"])
@roles_required("compliance")
@step_up_required
def withdraw(package_id: int):
    from advisor_studio.studio.models import Package

    package = db.get_or_404(Package, package_id)
    require(can_withdraw(current_user, package))
    form = WithdrawForm()
    if not form.validate_on_submit():
        flash(_("Give a reason and confirm to withdraw a package."), "danger")
        return redirect(url_for(".approved"))
    try:
        services.withdraw(package, current_user, form.reason.data)
    except PermissionDenied:
        raise
    except DomainError as err:
        db.session.rollback()
        _flash_domain_error(err)
    else:
        db.session.commit()
        flash(_("“%(title)s” was withdrawn; partners are told to take it down.", title=package.title), "success")
    return redirect(url_for(".approved"))


# --- lexicon ------------------------------------------------------------------------------------


@bp.route("/packages/<int:package_id>/evidence.zip")
@roles_required("compliance", "admin")
def evidence_pack(package_id: int):
    from advisor_studio.studio.models import Package

    package = db.get_or_404(Package, package_id)
    require(can_export_evidence(current_user, package))
    # A temp file, not memory: a package's download log grows with every Range request of every player.
    out = tempfile.TemporaryFile()
    try:
        evidence.export(package, current_user, out)
        db.session.commit()
    except BaseException:
        out.close()
        raise
    out.seek(0)
    response = send_file(out, mimetype="application/zip", as_attachment=True,
                         download_name=f"evidence-package-{package.id}.zip", conditional=False, etag=False)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/lexicon")
@roles_required("compliance")
def lexicon():
    require(can_manage_lexicon(current_user))
    current = services.current_lexicon_version()
    version = _int_arg("version")
    if version is None or not 1 <= version <= current:
        version = current
    filters = {"q": _arg("q"), "kind": _arg("kind", KIND_LABELS), "category": _arg("category", limit=40),
               "severity": _arg("severity", SEVERITY_LABELS), "platform": _arg("platform", PLATFORMS)}
    stmt = queries.lexicon_rules_query(version, **filters)
    page = db.paginate(stmt, page=query_page(), per_page=_per_page(), error_out=False)
    versions = db.session.scalars(queries.lexicon_versions_query().limit(5)).all()
    names = queries.user_names(v.created_by_id for v in versions)
    return render_template("compliance/lexicon.html", page=page, filters=filters, version=version, current=current,
                           versions=versions, names=names, categories=queries.lexicon_categories(version),
                           platforms=sorted(PLATFORMS), try_form=TryScannerForm(formdata=None))


@bp.route("/lexicon/versions")
@roles_required("compliance")
def lexicon_versions():
    require(can_manage_lexicon(current_user))
    page = db.paginate(queries.lexicon_versions_query(), page=query_page(), per_page=_per_page(),
                       error_out=False)
    names = queries.user_names(v.created_by_id for v in page.items)
    return render_template("compliance/lexicon_versions.html", page=page, names=names,
                           current=services.current_lexicon_version())


def _rule_changes(form: RuleForm) -> dict:
    return {"phrase": form.phrase.data, "kind": form.kind.data, "severity": form.severity.data or "",
            "category": form.category.data or "", "note": form.note.data or "",
            "platforms": list(form.platforms.data or []), "group": form.group.data or "",
            "suggestion": form.suggestion.data or ""}


@bp.route("/lexicon/rules/new", methods=["GET", "POST"])
@roles_required("compliance")
@step_up_required
def rule_new():
    require(can_manage_lexicon(current_user))
    form = RuleForm()
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            rule = services.add_rule(**_rule_changes(form), actor=current_user)
        except DomainError as err:
            db.session.rollback()
            _flash_domain_error(err, form)
            status = err.status
        else:
            db.session.commit()
            flash(_("“%(phrase)s” added; lexicon version %(n)d.", phrase=rule.phrase, n=rule.added_in), "success")
            return redirect(url_for(".lexicon"))
    return render_template("compliance/rule_form.html", form=form, rule=None, remove_form=None), status


@bp.route("/lexicon/rules/<int:rule_id>", methods=["GET", "POST"])
@roles_required("compliance")
@step_up_required
def rule_edit(rule_id: int):
    rule = db.get_or_404(LexiconRule, rule_id)
    require(can_manage_lexicon(current_user))
    if rule.removed_in is not None:
        flash(_("This entry is no longer in the lexicon (removed in version %(n)d).", n=rule.removed_in), "warning")
        return redirect(url_for(".lexicon"))
    form = RuleForm(obj=rule)
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            replacement = services.update_rule(rule, actor=current_user, **_rule_changes(form))
        except DomainError as err:
            db.session.rollback()
            _flash_domain_error(err, form)
            status = err.status
        else:
            db.session.commit()
            if replacement is rule:
                flash(_("Nothing changed."), "info")
            else:
                flash(_("“%(phrase)s” saved; lexicon version %(n)d.", phrase=replacement.phrase,
                        n=replacement.added_in), "success")
            return redirect(url_for(".lexicon"))
    return render_template("compliance/rule_form.html", form=form, rule=rule,
                           remove_form=RemoveRuleForm(formdata=None)), status


@bp.route("/lexicon/rules/<int:rule_id>/remove", methods=["POST"])
@roles_required("compliance")
@step_up_required
def rule_remove(rule_id: int):
    rule = db.get_or_404(LexiconRule, rule_id)
    require(can_manage_lexicon(current_user))
    form = RemoveRuleForm()
    if not form.validate_on_submit():
        flash(_("Give a reason and confirm to remove a lexicon entry."), "danger")
        return redirect(url_for(".rule_edit", rule_id=rule.id))
    try:
        services.remove_rule(rule, actor=current_user, reason=form.reason.data)
    except DomainError as err:
        db.session.rollback()
        _flash_domain_error(err)
        return redirect(url_for(".lexicon"))
    db.session.commit()
    flash(_("“%(phrase)s” removed; lexicon version %(n)d.", phrase=rule.phrase, n=rule.removed_in), "success")
    return redirect(url_for(".lexicon"))


def _import_errors(err: DomainError) -> list[tuple[int, str]]:
    rows = []
    for key, reason in err.fields.items():
        number = key.removeprefix("row ").strip()
        rows.append((int(number) if number.isdigit() else 0, reason))
    return sorted(rows)


@bp.route("/lexicon/import", methods=["GET", "POST"])
@roles_required("compliance")
@step_up_required
def lexicon_import():
    require(can_manage_lexicon(current_user))
    form = ImportForm()
    errors: list[tuple[int, str]] = []
    if form.validate_on_submit():
        data = form.file.data.stream.read(CSV_MAX_BYTES + 1)
        if len(data) > CSV_MAX_BYTES:
            form.file.errors = [_("The file is larger than 2 MB.")]
        else:
            try:
                version, counts = services.import_csv(data, actor=current_user, note=form.note.data or "")
            except DomainError as err:
                db.session.rollback()
                flash(err.message, "danger")
                errors = _import_errors(err)
            else:
                db.session.commit()
                if version is None:
                    flash(_("Nothing to import: every row is already in the lexicon (%(n)d unchanged).",
                            n=counts["unchanged"]), "info")
                else:
                    flash(_("Imported as lexicon version %(v)d: %(a)d added, %(u)d updated, %(c)d unchanged.",
                            v=version.number, a=counts["added"], u=counts["updated"], c=counts["unchanged"]),
                          "success")
                return redirect(url_for(".lexicon"))
    status = 400 if request.method == "POST" else 200
    return render_template("compliance/lexicon_import.html", form=form, errors=errors,
                           current=services.current_lexicon_version()), status


@bp.route("/lexicon/export.csv")
@roles_required("compliance")
def lexicon_export():
    require(can_manage_lexicon(current_user))
    current = services.current_lexicon_version()
    version = _int_arg("version")
    if version is None or not 1 <= version <= current:
        version = current
    out = io.StringIO()
    out.write("\ufeff")  # lets spreadsheet programs detect UTF-8; the importer drops it
    csv.writer(out, lineterminator="\r\n").writerows(queries.export_rows(version))
    return Response(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="lexicon-v{version}.csv"', "Cache-Control": "no-store"})


@bp.route("/lexicon/try", methods=["GET", "POST"])
@roles_required("compliance")
def lexicon_try():
    require(can_manage_lexicon(current_user))
    form = TryScannerForm()
    result = None
    if form.validate_on_submit():
        # A dry run: nothing is stored, so there is nothing to commit.
        text = form.text.data
        scanned, version = services.scan_text(text, platforms=[form.platform.data] if form.platform.data else [])
        findings = [f.to_dict() for f in scanned.findings]
        result = {"version": version, "blocking": scanned.blocking, "findings": findings,
                  "html": mark_findings(text, reasons.with_titles(findings))}
    status = 400 if request.method == "POST" and result is None else 200
    return render_template("compliance/lexicon_try.html", form=form, result=result), status
