"""Notification e-mail: sent by a task after the event commits, to a real (small) SMTP server on a
thread; never before the commit, never for a rolled-back event, never to who turned it off, and a failing
mail server never breaks the event."""

from __future__ import annotations

import json
import re
import time

import pytest
import sqlalchemy as sa

from advisor_studio import audit
from advisor_studio.extensions import db
from advisor_studio.notifications import services, tasks
from advisor_studio.notifications.models import Notification, NotificationSetting
from advisor_studio.studio.models import Script
from tests.conftest import csrf_from, free_port, running_worker, signed_in
from tests.notifications.conftest import decide, submit_script, user

pytestmark = pytest.mark.timeout(180)


def mail_app(app_factory, sink, **extra):
    """An app that sends mail through ``sink`` and runs queued tasks in-process once the commit is done."""
    return app_factory(CELERY_TASK_ALWAYS_EAGER=True, **sink.config(**extra))


def officers_emails(people, *keys) -> set[str]:
    return {people[k].email for k in keys}


def emailed(app) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Notification.id).where(Notification.emailed_at.is_not(None))))


def test_a_decision_is_emailed_to_its_author_with_a_link_to_the_script(app_factory, people, smtp_sink):
    app = mail_app(app_factory, smtp_sink)
    script_id, review_id = submit_script(app, people["advisor"].id, title="资产配置三原则")
    # The submission told every officer who may decide it, each by one e-mail.
    assert sorted(m.rcpts[0] for m in smtp_sink.messages) == sorted(
        officers_emails(people, "officer", "officer2", "both", "old_admin"))
    smtp_sink.messages.clear()

    decide(app, review_id, people["officer"].id, "request_changes", "请补充风险提示的位置")
    [sent] = smtp_sink.messages
    message = sent.message
    assert sent.rcpts == [people["advisor"].email]
    assert message["To"] == people["advisor"].email and message["From"] == "studio@broker.example.com"
    assert message["Subject"] == "合规要求修改您的脚本“资产配置三原则”。"
    body = message.get_content()
    assert "原因：请补充风险提示的位置" in body
    assert f"https://studio.broker.example.com/studio/scripts/{script_id}" in body
    assert "https://studio.broker.example.com/notifications" in body
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                 .where(Notification.emailed_at.is_(None))) == 0


def test_nothing_is_sent_for_an_event_that_is_rolled_back(app_factory, people, smtp_sink):
    from advisor_studio.studio import services as studio
    from tests.factories import legal_script_body

    app = mail_app(app_factory, smtp_sink)
    with app.app_context():
        author = user(people["advisor"].id)
        script = studio.create_script(author, title="t", body=legal_script_body(author))
        studio.submit_script(script, author)
        assert smtp_sink.messages == []  # not before the commit
        db.session.rollback()
    assert smtp_sink.messages == []


def test_without_a_mail_server_no_mail_task_is_queued(app_factory, people, smtp_sink):
    from advisor_studio.tasks_util import _KEY

    app = app_factory(CELERY_TASK_ALWAYS_EAGER=True)
    assert not app.config["MAIL_SERVER"]
    with app.app_context():
        ids = services.notify("render_finished", [people["advisor"].id], object_type="package", object_id=1,
                              params={"title": "t"})
        pending = [item[0].name for item in db.session().info.get(_KEY, [])]
        assert ids and "advisor_studio.notifications.send_emails" not in pending
        db.session.commit()
    assert smtp_sink.messages == [] and emailed(app) == []


def test_a_user_who_turns_email_off_keeps_the_notification_but_gets_no_mail(app_factory, people, smtp_sink):
    app = mail_app(app_factory, smtp_sink)
    advisor = signed_in(app, people["advisor"])
    page = advisor.get("/notifications").get_data(as_text=True)
    assert 'data-testid="email-preference"' in page
    assert re.search(r'<input checked[^>]*name="email_enabled"', page)  # on by default
    resp = advisor.post("/notifications/settings", data={"csrf_token": csrf_from(page)})  # unticked
    assert resp.status_code == 302
    assert "邮件通知已关闭" in advisor.get("/notifications").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(NotificationSetting, people["advisor"].id).email_enabled is False
        entry = db.session.scalars(sa.select(audit.AuditEntry).where(
            audit.AuditEntry.action == "notification.email_preference")).one()
        assert entry.object_id == str(people["advisor"].id) and entry.details == {"email_enabled": False}

    _script_id, review_id = submit_script(app, people["advisor"].id)
    smtp_sink.messages.clear()
    decide(app, review_id, people["officer"].id, "approve")
    assert smtp_sink.messages == []
    with app.app_context():
        [note] = db.session.scalars(sa.select(Notification).where(
            Notification.recipient_id == people["advisor"].id)).all()
        assert note.kind == "script_approved" and note.emailed_at is None


def test_the_preference_form_is_shown_only_when_mail_is_configured(app, people):
    page = signed_in(app, people["advisor"]).get("/notifications").get_data(as_text=True)
    assert 'data-testid="email-preference"' not in page


@pytest.mark.parametrize("server", ["refusing", "closed port"])
def test_a_failing_mail_server_does_not_break_the_event(app_factory, people, refusing_smtp, server):
    extra = {"MAIL_PORT": free_port()} if server == "closed port" else {}
    app = mail_app(app_factory, refusing_smtp, **extra)
    with app.app_context():
        author = user(people["advisor"].id)
        from advisor_studio.studio import services as studio
        from tests.factories import legal_script_body

        script = studio.create_script(author, title="资产配置三原则", body=legal_script_body(author))
        db.session.commit()
        script_id = script.id
    advisor = signed_in(app, people["advisor"])
    form = advisor.get(f"/studio/scripts/{script_id}").get_data(as_text=True)
    with app.app_context():
        script = db.session.get(Script, script_id)
        data = {"csrf_token": csrf_from(form), "title": script.title, "body": script.body, "caption": "",
                "hashtags": "", "platforms": ["douyin"]}
    resp = advisor.post(f"/studio/scripts/{script_id}/submit", data=data)
    assert resp.status_code == 302  # submitted, whatever the mail server did
    with app.app_context():
        assert db.session.get(Script, script_id).status == "submitted"
        notes = db.session.scalars(sa.select(Notification)).all()
        assert len(notes) == 4 and all(n.emailed_at is None for n in notes)
    assert refusing_smtp.messages == []
    if server == "refusing":  # tried again with back-off (in-process here: at once), then given up
        assert refusing_smtp.connections == 1 + tasks.MAIL_RETRIES


def test_the_send_task_is_safe_to_run_twice(app_factory, people, smtp_sink):
    app = app_factory(**smtp_sink.config())  # not eager: the test runs the task itself
    with app.app_context():
        ids = services.notify("render_finished", [people["advisor"].id, people["officer"].id],
                              object_type="package", object_id=7, params={"title": "三分钟讲清资产配置"})
        db.session.commit()
        assert tasks.send_emails.apply(args=[ids]).get() == 2
        assert tasks.send_emails.apply(args=[ids]).get() == 0
    assert len(smtp_sink.messages) == 2
    assert sorted(emailed(app)) == sorted(ids)


def test_smtp_login_is_used_when_configured(app_factory, people, smtp_sink):
    app = mail_app(app_factory, smtp_sink, MAIL_USERNAME="studio", MAIL_PASSWORD="s3cret-relay")
    with app.app_context():
        services.notify("render_failed", [people["advisor"].id], object_type="package", object_id=7,
                        params={"title": "t", "code": "timeout"})
        db.session.commit()
    assert smtp_sink.logins == [[b"studio", b"s3cret-relay"]]
    assert "渲染超时。" in smtp_sink.messages[0].message.get_content()


def test_a_line_break_in_a_title_cannot_add_mail_headers(app_factory, people, smtp_sink):
    app = mail_app(app_factory, smtp_sink)
    with app.app_context():
        services.notify("render_finished", [people["advisor"].id], object_type="package", object_id=7,
                        params={"title": "标题\r\nBcc: victim@example.com"})
        db.session.commit()
    [sent] = smtp_sink.messages
    assert sent.rcpts == [people["advisor"].email]
    assert sent.message["Bcc"] is None and "\n" not in sent.message["Subject"]


def test_deactivated_users_get_no_mail(app_factory, people, smtp_sink):
    app = mail_app(app_factory, smtp_sink)
    with app.app_context():
        services.notify("render_finished", [people["inactive"].id, people["advisor"].id], object_type="package",
                        object_id=7, params={"title": "t"})
        db.session.commit()
    assert [m.rcpts for m in smtp_sink.messages] == [[people["advisor"].email]]


@pytest.mark.worker
def test_a_real_worker_mails_after_the_request_commits_under_its_request_id(app_factory, people, smtp_sink):
    app = app_factory(**smtp_sink.config())
    env = {key: str(value) for key, value in smtp_sink.config().items()}
    with app.app_context():
        from advisor_studio.studio import services as studio
        from tests.factories import legal_script_body

        author = user(people["advisor"].id)
        script = studio.create_script(author, title="资产配置三原则", body=legal_script_body(author))
        db.session.commit()
        script_id, body = script.id, script.body
    advisor = signed_in(app, people["advisor"])
    form = advisor.get(f"/studio/scripts/{script_id}").get_data(as_text=True)
    advisor.environ_base["HTTP_X_REQUEST_ID"] = "trace-notify-0001-request"
    with running_worker(app, **env) as proc:
        resp = advisor.post(f"/studio/scripts/{script_id}/submit", data={
            "csrf_token": csrf_from(form), "title": "资产配置三原则", "body": body, "caption": "", "hashtags": "",
            "platforms": ["douyin"]})
        assert resp.status_code == 302
        # The worker logs the task's outcome after the last message is sent: wait for both.
        deadline = time.monotonic() + 90
        while True:
            log_lines = [json.loads(line) for line in proc.log_path.read_text().splitlines()
                         if line.startswith("{") and line.endswith("}")]  # not a line still being written
            traced = any(r.get("request_id") == "trace-notify-0001-request" and "send_emails" in r["message"]
                         for r in log_lines)
            if (len(smtp_sink.messages) >= 4 and traced) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert len(smtp_sink.messages) == 4, proc.log_path.read_text()[-3000:]
    assert {m.message["Subject"] for m in smtp_sink.messages} == {
        m.message["Subject"] for m in smtp_sink.messages[:1]}
    assert smtp_sink.messages[0].message["Subject"].startswith("新的脚本待预审：")
    assert traced, proc.log_path.read_text()[-3000:]


def test_mail_settings_come_from_the_environment(monkeypatch):
    from advisor_studio.notifications.mail import SmtpSettings
    from config import Config

    for name in ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USERNAME", "MAIL_PASSWORD", "MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    assert SmtpSettings.from_config(vars(Config())) is None  # no server: no e-mail
    monkeypatch.setenv("MAIL_SERVER", "smtp.internal")
    monkeypatch.setenv("MAIL_USE_TLS", "1")
    settings = SmtpSettings.from_config(vars(Config()))
    assert (settings.host, settings.port, settings.use_tls, settings.sender) == (
        "smtp.internal", 587, True, "advisor-studio@localhost")
    monkeypatch.setenv("MAIL_PORT", "70000")
    with pytest.raises(RuntimeError, match="MAIL_PORT"):
        Config()
