"""Advisor pages of sharing tasks: my tasks (open / done), a task with one copyable message and QR per
group, and marking it done."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from advisor_studio.access import require, roles_required
from advisor_studio.compliance import approvals
from advisor_studio.compliance.models import Approval
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import services, sharing
from advisor_studio.referrals.models import GROUP_PLATFORM_LABELS, SharingTask
from advisor_studio.web import query_page

bp = Blueprint("sharing", __name__, url_prefix="/referrals/tasks")

STATUSES = ("open", "done")


class DoneForm(FlaskForm):
    """Mark a task done (CSRF only)."""


def _own_task(task_id: int) -> SharingTask:
    task = db.get_or_404(SharingTask, task_id)
    require(sharing.can_work_on(current_user, task))
    return task


@bp.get("")
@roles_required("advisor")
def tasks():
    """My sharing tasks, open first."""
    status = request.args.get("status", "open")
    if status not in STATUSES:
        raise ValidationError(_("Unknown status filter."), fields={"status": _("invalid")}, code="bad_query")
    done = SharingTask.done_at.is_not(None) if status == "done" else SharingTask.done_at.is_(None)
    stmt = (sa.select(SharingTask).where(SharingTask.advisor_id == current_user.id, done)
            .options(sa.orm.selectinload(SharingTask.package), sa.orm.selectinload(SharingTask.links))
            .order_by(SharingTask.created_at.desc(), SharingTask.id.desc()))
    page = db.paginate(stmt, page=query_page(), per_page=25, error_out=False)
    counts = dict(db.session.execute(
        sa.select(SharingTask.done_at.is_not(None), sa.func.count()).where(SharingTask.advisor_id == current_user.id)
        .group_by(SharingTask.done_at.is_not(None))).all())
    return render_template("referrals/tasks/list.html", page=page, status=status,
                           open_count=counts.get(False, 0), done_count=counts.get(True, 0))


@bp.get("/<int:task_id>")
@roles_required("advisor")
def task(task_id: int):
    """One task: per group the approved caption with the group's link, and its QR; opening is recorded."""
    item = _own_task(task_id)
    if sharing.mark_opened(item, current_user):
        db.session.commit()
    approval = db.session.get(Approval, item.approval_id)
    live = approvals.is_live(approval, item.package)
    caption = (approval.manifest or {}).get("caption") or ""
    rows = [{"link": link, "group": link.group, "url": services.public_url(link),
             "message": sharing.share_message(caption, link)} for link in item.links]
    return render_template("referrals/tasks/detail.html", task=item, approval=approval, live=live, rows=rows,
                           form=DoneForm(), platform_labels=GROUP_PLATFORM_LABELS)


@bp.post("/<int:task_id>/done")
@roles_required("advisor")
def done(task_id: int):
    """Mark the task done."""
    item = _own_task(task_id)
    if not DoneForm().validate_on_submit():
        flash(_("The form expired. Reload the page and try again."), "danger")
        return redirect(url_for("sharing.task", task_id=item.id))
    sharing.mark_done(item, current_user)
    db.session.commit()
    flash(_("Marked as shared. Thank you!"), "success")
    return redirect(url_for("sharing.tasks"))
