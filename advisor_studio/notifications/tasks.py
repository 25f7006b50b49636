"""Notification tasks: the e-mail of new notifications (queued after the event's commit) and the
periodic announcement of reviews nearing their due time."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from flask import current_app

from advisor_studio.extensions import db
from advisor_studio.notifications import mail, messages, queries, services

log = logging.getLogger(__name__)

MAIL_RETRIES = 5
MAIL_RETRY_CAP_SECONDS = 3600


@shared_task(bind=True, name="advisor_studio.notifications.send_emails", max_retries=MAIL_RETRIES)
def send_emails(self, notification_ids: list[int]) -> int:
    """E-mail the given notifications to their recipients; safe to run twice (sent ones are marked).

    One SMTP connection per run. Each sent message is committed at once, so a retry after a broken
    connection sends only what is left. A failing server is retried with back-off and then given up:
    the notification itself stays in the app either way.
    """
    settings = mail.SmtpSettings.from_config(current_app.config)
    if settings is None:
        return 0
    batch = queries.email_batch(list(notification_ids))
    if not batch:
        return 0
    sent = 0
    try:
        with mail.connection(settings) as smtp:
            for notification, user in batch:
                message = mail.build_message(sender=settings.sender, to=user.email,
                                             subject=messages.text(notification),
                                             body=messages.email_body(notification))
                try:
                    smtp.send_message(message)
                except smtplib.SMTPRecipientsRefused:
                    # This address is refused for good; retrying would not change that.
                    log.warning("notification e-mail %s refused for user %s", notification.id, user.id)
                    continue
                services.mark_emailed(notification)
                db.session.commit()
                sent += 1
    except (smtplib.SMTPException, OSError) as exc:
        db.session.rollback()
        retries = self.request.retries or 0
        log.warning("notification e-mail failed (attempt %d of %d): %s", retries + 1, MAIL_RETRIES + 1,
                    exc.__class__.__name__)
        if retries >= MAIL_RETRIES:
            return sent
        raise self.retry(exc=exc, countdown=min(60 * 2**retries, MAIL_RETRY_CAP_SECONDS)) from exc
    return sent


@shared_task(name="advisor_studio.notifications.notify_reviews_due_soon")
def notify_reviews_due_soon() -> int:
    """Announce open reviews nearing their due time (celery beat); each review once."""
    count = services.notify_reviews_due_soon()
    db.session.commit()
    return count
