"""Plain SMTP sending with the standard library (no Flask here): settings, one message, one connection."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

SUBJECT_MAX = 200


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None
    sender: str
    timeout: float

    @classmethod
    def from_config(cls, config: Mapping) -> SmtpSettings | None:
        """The settings of MAIL_*; None when MAIL_SERVER is not set (no e-mail)."""
        host = config.get("MAIL_SERVER")
        if not host:
            return None
        return cls(host=host, port=int(config.get("MAIL_PORT") or 25), use_tls=bool(config.get("MAIL_USE_TLS")),
                   username=config.get("MAIL_USERNAME") or None, password=config.get("MAIL_PASSWORD") or None,
                   sender=config.get("MAIL_FROM") or "advisor-studio@localhost",
                   timeout=float(config.get("MAIL_TIMEOUT_SECONDS") or 10))


def one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """``text`` on one line (a header never carries a line break), at most ``limit`` characters."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A UTF-8 plain-text message."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = one_line(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to this
    message.set_content(body)
    return message


@contextmanager
def connection(settings: SmtpSettings):
    """An SMTP connection (STARTTLS and login when configured), closed afterwards."""
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.use_tls:
            smtp.starttls()
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        yield smtp
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
