"""The allowed-transition tables, tested exhaustively: every disallowed move is refused."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from advisor_studio.audit import AuditEntry
from advisor_studio.errors import Conflict
from advisor_studio.extensions import db
from advisor_studio.studio import states
from advisor_studio.studio.models import PACKAGE_STATUSES, SCRIPT_STATUSES, Package, Script, ScriptRevision
from tests.factories import make_user

SCRIPT_PAIRS = list(itertools.product(SCRIPT_STATUSES, SCRIPT_STATUSES))
PACKAGE_PAIRS = list(itertools.product(PACKAGE_STATUSES, PACKAGE_STATUSES))


def _audit_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))


@pytest.fixture
def script(app_ctx):
    author = make_user("advisor")
    script = Script(author_id=author.id, title="t", body="b", caption="", hashtags=[], platforms=[])
    db.session.add(script)
    db.session.flush()
    return script


@pytest.fixture
def package(script):
    revision = ScriptRevision(script_id=script.id, number=1, title="t", body="b", caption="", hashtags=[],
                              platforms=[], sha256="0" * 64, created_by_id=script.author_id)
    db.session.add(revision)
    db.session.flush()
    package = Package(author_id=script.author_id, script_id=script.id, script_revision_id=revision.id, title="t")
    db.session.add(package)
    db.session.flush()
    return package


@pytest.mark.parametrize("old,new", SCRIPT_PAIRS, ids=[f"{a}->{b}" for a, b in SCRIPT_PAIRS])
def test_script_transition_table_is_enforced(script, old, new):
    script.status = old  # test set-up only: put the script in the starting state
    db.session.flush()
    before = _audit_count()
    if new in states.SCRIPT_TRANSITIONS[old]:
        action = states.transition_script(script, new, "tester", "because")
        assert script.status == new
        entry = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry.action == action and entry.details["from"] == old and entry.details["to"] == new
    else:
        with pytest.raises(Conflict):
            states.transition_script(script, new, "tester", "because")
        assert script.status == old
        assert _audit_count() == before


@pytest.mark.parametrize("old,new", PACKAGE_PAIRS, ids=[f"{a}->{b}" for a, b in PACKAGE_PAIRS])
def test_package_transition_table_is_enforced(package, old, new):
    package.status = old  # test set-up only
    db.session.flush()
    before = _audit_count()
    if new in states.PACKAGE_TRANSITIONS[old]:
        states.transition_package(package, new, "tester", "because")
        assert package.status == new and _audit_count() == before + 1
    else:
        with pytest.raises(Conflict):
            states.transition_package(package, new, "tester", "because")
        assert package.status == old and _audit_count() == before


def test_terminal_states_have_no_way_out():
    assert states.PACKAGE_TRANSITIONS["withdrawn"] == {}
    assert states.PACKAGE_TRANSITIONS["archived"] == {}
    assert states.SCRIPT_TRANSITIONS["archived"] == {}


def test_no_code_outside_the_state_machine_assigns_a_status():
    """Status assignment is reserved to studio/states.py (grep the package source)."""
    import pathlib
    import re

    root = pathlib.Path(states.__file__).resolve().parent.parent
    pattern = re.compile(r"\b(script|package|obj)\.status\s*=[^=]")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "states.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_nothing_is_ever_hard_deleted():
    """No service or route deletes rows: deletion is a state with an audit entry."""
    import pathlib
    import re

    root = pathlib.Path(states.__file__).resolve().parent.parent
    pattern = re.compile(r"session\.delete\(|\bsa\.delete\(|\.delete\(\)\s*$|DELETE FROM", re.MULTILINE)
    # Derived rows only: the analytics rollups and their to-do list are recomputed from the raw tables.
    derived = ("sa.delete(DailyRollup)", "sa.delete(AdvisorDailyRollup)", "sa.delete(DirtyDay)")
    offenders = [f"{p.relative_to(root)}:{line.strip()}" for p in root.rglob("*.py")
                 for line in p.read_text("utf-8").splitlines()
                 if pattern.search(line) and not any(allowed in line for allowed in derived)]
    assert offenders == []
