"""The bell's count (on every page of a signed-in user) and the notifications page: list, open (marks
read, then goes to the object), mark all read, and the e-mail preference."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from advisor_studio.access import login_required
from advisor_studio.dbtypes import MAX_INTEGER
from advisor_studio.extensions import db
from advisor_studio.notifications import messages, queries, services
from advisor_studio.notifications.forms import EmailPreferenceForm, ReadAllForm
from advisor_studio.notifications.models import Notification
from advisor_studio.notifications.permissions import can_open
from advisor_studio.web import query_page

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

_UNREAD = "notifications_unread"


@bp.app_context_processor
def bell():
    """``notification_unread_count()`` for base.html: one COUNT per page, only when the bell is drawn."""

    def unread_count() -> int | None:
        if not getattr(current_user, "is_authenticated", False):
            return None
        if _UNREAD not in g:
            try:
                g.setdefault(_UNREAD, queries.unread_count(current_user.id))
            except SQLAlchemyError:  # an error page after a database failure still renders, without a count
                db.session.rollback()
                return None
        return g.get(_UNREAD)

    return {"notification_unread_count": unread_count}


def _own(notification_id: int) -> Notification:
    notification = db.get_or_404(Notification, notification_id)
    if not can_open(current_user, notification):
        abort(404)  # someone else's notification: as if it did not exist
    return notification


@bp.get("")
@login_required
def index():
    """The user's notifications, newest first."""
    unread, newest = queries.summary(current_user.id)
    g.setdefault(_UNREAD, unread)  # the bell of this page needs no second count
    page = queries.notifications_page(current_user.id, page=query_page(),
                                      per_page=current_app.config["PAGE_SIZE"])
    items = [{"notification": n, "text": messages.text(n), "detail": messages.detail(n)} for n in page.items]
    preference = None
    if queries.mail_configured():
        preference = EmailPreferenceForm(email_enabled=queries.email_enabled(current_user.id))
    return render_template("notifications/list.html", page=page, items=items, unread=unread, newest=newest,
                           preference=preference)


@bp.post("/<int:notification_id>/open")
@login_required
def open_notification(notification_id: int):
    """Mark the notification read and go to what it is about."""
    notification = _own(notification_id)
    services.mark_read(notification, current_user)
    db.session.commit()
    endpoint, values = messages.target(notification)
    return redirect(url_for(endpoint, **values))


@bp.post("/read-all")
@login_required
def read_all():
    """Mark every notification read, up to the newest the page showed."""
    form = ReadAllForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Reload the page and try again."), "danger")
        return redirect(url_for(".index"))
    up_to = min(int(form.up_to.data), MAX_INTEGER) if form.up_to.data else None
    count = services.mark_all_read(current_user, up_to)
    db.session.commit()
    if count:
        flash(_("All notifications are marked as read."), "success")
    return redirect(url_for(".index"))


@bp.post("/settings")
@login_required
def settings():
    """Turn notification e-mail on or off."""
    form = EmailPreferenceForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Reload the page and try again."), "danger")
        return redirect(url_for(".index"))
    services.set_email_enabled(current_user, form.email_enabled.data)
    db.session.commit()
    flash(_("E-mail notifications are on.") if form.email_enabled.data else _("E-mail notifications are off."),
          "success")
    return redirect(url_for(".index"))
