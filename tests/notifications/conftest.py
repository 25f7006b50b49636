"""Fixtures of notification tests: a cast of officers (some of whom may not decide reviews), the review
flow driven through the real services, and a small SMTP server on a thread standing in for the mail
relay (outside our walls)."""

from __future__ import annotations

import base64
import socketserver
import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import ROLE_REVOKED, RoleEvent, User
from advisor_studio.dbtypes import utcnow
from advisor_studio.extensions import db
from advisor_studio.notifications.models import Notification
from tests.conftest import record_of
from tests.factories import ensure_lexicon, legal_script_body, make_channel, make_ready_rendition, make_user

# --- a small SMTP server --------------------------------------------------------------------------


def _address(arg: str) -> str:
    """"TO:<a@b.c> SIZE=1" -> "a@b.c"."""
    return arg.partition(":")[2].strip().split(" ")[0].strip("<>")


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Enough ESMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        sink = self.server.sink
        sink.connections += 1
        self._reply("220 sink.test ESMTP")
        mail_from, rcpts = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250-sink.test")
                self._reply("250-AUTH PLAIN")
                self._reply("250 8BITMIME")
            elif verb == "AUTH":
                mechanism, _, response = arg.partition(" ")
                sink.logins.append(base64.b64decode(response).split(b"\0")[1:])
                self._reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                if sink.refuse:
                    self._reply("451 4.3.0 Mail system temporarily unavailable")
                    continue
                mail_from, rcpts = _address(arg), []
                self._reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(_address(arg))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b""):
                        break
                    lines.append(data[1:] if data.startswith(b"..") else data)
                sink.messages.append(SimpleNamespace(mail_from=mail_from, rcpts=rcpts,
                                                     message=message_from_bytes(b"".join(lines),
                                                                                policy=default_policy)))
                self._reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 Bye")
                return
            else:
                self._reply("502 Command not implemented")


class SmtpSink:
    """Records every message it accepts; with ``refuse`` it answers 451 to every MAIL FROM."""

    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.messages: list[SimpleNamespace] = []
        self.logins: list[list[bytes]] = []
        self.connections = 0
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
        self.server.daemon_threads = True
        self.server.sink = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def config(self, **extra) -> dict:
        return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": self.port, "MAIL_FROM": "studio@broker.example.com",
                "MAIL_TIMEOUT_SECONDS": 5, "PUBLIC_BASE_URL": "https://studio.broker.example.com", **extra}


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture
def refusing_smtp():
    sink = SmtpSink(refuse=True)
    yield sink
    sink.close()


# --- people and the review flow ---------------------------------------------------------------------


@pytest.fixture
def people(app):
    """An advisor, two officers who may decide reviews, and officers who may not: one holding admin,
    one who gave admin up yesterday (cool-down), one deactivated; plus an advisor who is also an officer,
    an officer whose admin role ended long ago (eligible again), and an mcn user."""
    with app.app_context():
        ensure_lexicon()
        made = {
            "advisor": make_user("advisor"),
            "officer": make_user("compliance"),
            "officer2": make_user("compliance"),
            "admin_officer": make_user("compliance", "admin"),
            "recent_admin": make_user("compliance"),
            "old_admin": make_user("compliance"),
            "inactive": make_user("compliance"),
            "both": make_user("advisor", "compliance"),
            "mcn": make_user("mcn"),
        }
        db.session.flush()
        now = utcnow()
        db.session.add(RoleEvent(user_id=made["recent_admin"].id, role="admin", action=ROLE_REVOKED,
                                 at=now - timedelta(days=1), actor_label="test"))
        db.session.add(RoleEvent(user_id=made["old_admin"].id, role="admin", action=ROLE_REVOKED,
                                 at=now - timedelta(days=400), actor_label="test"))
        made["inactive"].active = False
        db.session.commit()
        return {key: record_of(user) for key, user in made.items()}


def user(user_id: int) -> User:
    return db.session.get(User, user_id)


def submit_script(app, author_id: int, title: str = "资产配置三原则") -> tuple[int, int]:
    """(script id, review id) of a script submitted for pre-approval."""
    from advisor_studio.compliance.models import Review
    from advisor_studio.studio import services as studio

    with app.app_context():
        author = user(author_id)
        script = studio.create_script(author, title=title, body=legal_script_body(author), platforms=["douyin"])
        studio.submit_script(script, author)
        db.session.commit()
        review = db.session.scalars(sa.select(Review).where(Review.script_id == script.id)).one()
        return script.id, review.id


def decide(app, review_id: int, officer_id: int, decision: str, reason: str = "") -> None:
    from advisor_studio.compliance import services as compliance
    from advisor_studio.compliance.models import Review

    with app.app_context():
        review = db.session.get(Review, review_id)
        officer = user(officer_id)
        compliance.claim(review, officer)
        compliance.decide(review, officer, decision, reason)
        db.session.commit()


def submit_package(app, author_id: int, officer_id: int, title: str = "三分钟讲清资产配置") -> tuple[int, int]:
    """(package id, review id) of a package submitted for final review (its script pre-approved first)."""
    from advisor_studio.compliance.models import STAGE_PACKAGE, Review
    from advisor_studio.studio import services as studio
    from advisor_studio.studio.models import Script

    script_id, review_id = submit_script(app, author_id)
    decide(app, review_id, officer_id, "approve")
    with app.app_context():
        author = user(author_id)
        script = db.session.get(Script, script_id)
        package = studio.create_package(script, author, title=title, channel_ids=[make_channel().id])
        studio.set_rendition(package, make_ready_rendition(package), author)
        studio.submit_package(package, author)
        db.session.commit()
        review = db.session.scalars(sa.select(Review).where(Review.package_id == package.id,
                                                            Review.stage == STAGE_PACKAGE)).one()
        return package.id, review.id


def rows(app, since_id: int = 0) -> list[tuple]:
    """(recipient id, kind, object type, object id) of every notification after ``since_id``."""
    with app.app_context():
        return sorted(db.session.execute(
            sa.select(Notification.recipient_id, Notification.kind, Notification.object_type,
                      Notification.object_id).where(Notification.id > since_id)).tuples())


def last_id(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(Notification.id), 0)))
