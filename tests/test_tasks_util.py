"""enqueue_after_commit sends on the outermost commit only: savepoints neither send nor drop others' tasks."""

from __future__ import annotations

import sqlalchemy as sa

from advisor_studio.extensions import db
from advisor_studio.tasks_util import enqueue_after_commit


class Recorder:
    def __init__(self):
        self.sent = []

    def apply_async(self, args=(), kwargs=None):
        self.sent.append(args)


def test_released_savepoint_sends_nothing_until_the_real_commit(app_ctx):
    task = Recorder()
    db.session.execute(sa.text("SELECT 1"))
    enqueue_after_commit(task, "outer")
    with db.session.begin_nested():
        enqueue_after_commit(task, "inner")
    assert task.sent == []
    db.session.commit()
    assert task.sent == [("outer",), ("inner",)]


def test_rolled_back_savepoint_drops_only_its_own_tasks(app_ctx):
    task = Recorder()
    db.session.execute(sa.text("SELECT 1"))
    enqueue_after_commit(task, "kept")
    nested = db.session.begin_nested()
    enqueue_after_commit(task, "void")
    nested.rollback()
    outer = db.session.begin_nested()
    inner = db.session.begin_nested()
    enqueue_after_commit(task, "released into a savepoint that then rolls back")
    inner.commit()
    outer.rollback()
    db.session.commit()
    assert task.sent == [("kept",)]


def test_outer_rollback_drops_everything(app_ctx):
    task = Recorder()
    db.session.execute(sa.text("SELECT 1"))
    enqueue_after_commit(task, "a")
    with db.session.begin_nested():
        enqueue_after_commit(task, "b")
    db.session.rollback()
    db.session.commit()
    assert task.sent == []
