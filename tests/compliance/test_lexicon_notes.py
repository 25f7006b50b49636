"""Lexicon version notes read in the reader's language: what the system writes is stored as a code with
parameters and worded at display; a typed note, and every note stored before codes existed, as written."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_babel import force_locale, gettext, ngettext

from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import LexiconRule, LexiconVersion
from advisor_studio.extensions import db
from tests.conftest import post_form, signed_in
from tests.factories import ensure_lexicon
from tests.test_core import run_flask

NOTE_RE = re.compile(r'data-version="(\d+)">.*?data-testid="version-note"[^>]*>([^<]*)</td>', re.S)


def notes_on_page(client) -> dict[int, str]:
    resp = client.get("/compliance/lexicon/versions")
    assert resp.status_code == 200
    return {int(n): text.strip() for n, text in NOTE_RE.findall(resp.get_data(as_text=True))}


@pytest.fixture
def history(app, users) -> dict[str, int]:
    """Versions made by each kind of change: default load, add, edit, remove, imports with and without a note."""
    with app.app_context():
        officer = db.session.get(User, users["compliance"].id)
        made = {"default": ensure_lexicon() or compliance.current_lexicon_version()}
        rule = compliance.add_rule(phrase="闭眼冲一把", kind="forbidden", severity="block", actor=officer)
        made["add"] = compliance.current_lexicon_version()
        rule = compliance.update_rule(rule, actor=officer, severity="warn")
        made["edit"] = compliance.current_lexicon_version()
        compliance.remove_rule(rule, actor=officer, reason="口径调整")
        made["remove"] = compliance.current_lexicon_version()
        compliance.import_csv("phrase,kind,severity,note\n躺着数钱,forbidden,warn,\n".encode(), actor=officer)
        made["import"] = compliance.current_lexicon_version()
        compliance.import_csv("phrase,kind,severity,note\n稳稳拿捏,forbidden,warn,\n".encode(), actor=officer,
                              note="按2026年监管通知补充")
        made["typed"] = compliance.current_lexicon_version()
        db.session.commit()
    return made


def test_system_notes_are_codes_worded_for_the_reader(app, users, history):
    with app.app_context():
        stored = {v.number: (v.note_code, v.note_args, v.note) for v in db.session.scalars(sa.select(LexiconVersion))}
    assert stored[history["default"]][:2] == ("default", None)
    assert stored[history["add"]][:2] == ("add", {"phrase": "闭眼冲一把"})
    assert stored[history["edit"]][:2] == ("edit", {"phrase": "闭眼冲一把"})
    assert stored[history["remove"]][:2] == ("remove", {"phrase": "闭眼冲一把", "reason": "口径调整"})
    assert stored[history["import"]][:2] == ("import", {"rows": 1})
    assert stored[history["typed"]] == (None, None, "按2026年监管通知补充")
    assert stored[history["default"]][2] == "default lexicon"  # the record keeps its English wording

    client = signed_in(app, users["compliance"])
    assert post_form(client, "/language/en", {"next": "/"}, form_page="/").status_code == 302
    assert notes_on_page(client) == {
        history["typed"]: "按2026年监管通知补充",
        history["import"]: "Imported 1 row",
        history["remove"]: "Removed “闭眼冲一把”: 口径调整",
        history["edit"]: "Edited “闭眼冲一把”",
        history["add"]: "Added “闭眼冲一把”",
        history["default"]: "Default lexicon loaded",
    }


def test_notes_follow_the_zh_cn_catalogue(app, users, history):
    notes = notes_on_page(signed_in(app, users["compliance"]))  # zh_CN is the default language
    with app.test_request_context(), force_locale("zh_CN"):
        expected = {history["default"]: gettext("Default lexicon loaded"),
                    history["import"]: ngettext("Imported %(num)d row", "Imported %(num)d rows", 1),
                    history["add"]: gettext("Added “%(phrase)s”", phrase="闭眼冲一把")}
    for number, text in expected.items():
        assert notes[number] == text
    assert "default lexicon" not in notes.values()
    # The lexicon page's history box words them the same way.
    html = signed_in(app, users["compliance"]).get("/compliance/lexicon").get_data(as_text=True)
    assert expected[history["add"]] in html and ">default lexicon<" not in html


def test_notes_stored_before_codes_are_shown_as_written(app, users, history):
    with app.app_context():
        db.session.add(LexiconVersion(number=history["typed"] + 1, note="import of 344 rows", entry_count=0))
        db.session.add(LexiconVersion(number=history["typed"] + 2, note="remove 保本: outdated", note_code="remove",
                                      note_args={"phrase": 42}, entry_count=0))  # damaged parameters
        db.session.commit()
    notes = notes_on_page(signed_in(app, users["compliance"]))
    assert notes[history["typed"] + 1] == "import of 344 rows"
    assert notes[history["typed"] + 2] == "remove 保本: outdated"


def test_cli_import_without_a_note_names_the_file(app, tmp_path):
    path = tmp_path / "新增词条.csv"
    path.write_text("phrase,kind,severity,note\n闭眼冲一把,forbidden,block,承诺收益\n", encoding="utf-8")
    assert run_flask(app, "lexicon", "import", str(path)).returncode == 0
    with app.app_context():
        version = db.session.scalars(sa.select(LexiconVersion)).one()
        assert (version.note_code, version.note_args) == ("import_file", {"file": "新增词条.csv"})
        assert db.session.scalar(sa.select(sa.func.count(LexiconRule.id))) == 1
