"""`flask lexicon import` and `flask lexicon scan`, run as real subprocesses (contract.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from advisor_studio.compliance import services as compliance
from advisor_studio.extensions import db
from tests.conftest import ROOT, subprocess_env
from tests.factories import ensure_lexicon, make_user
from tests.test_core import run_flask

TEXT = "大家好😀，今天说点干货：\n跟我买，稳 赚 不 赔！收益翻倍不是梦。"


@pytest.fixture
def lexicon_app(app):
    with app.app_context():
        ensure_lexicon()
        db.session.commit()
        app.lexicon_version = compliance.current_lexicon_version()
    return app


def _version(app) -> int:
    with app.app_context():
        return compliance.current_lexicon_version()


def _scan(app, *args, input_text=None) -> dict:
    done = run_flask(app, "lexicon", "scan", *args, input_text=input_text)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _assert_offsets(report: dict, text: str) -> None:
    for finding in report["findings"]:
        assert {"rule", "category", "severity", "start", "end", "text"} <= set(finding)
        assert finding["text"] == text[finding["start"]:finding["end"]]


def test_import_prints_counts_and_makes_one_version(app, tmp_path):
    path = tmp_path / "lexicon.csv"
    path.write_text("phrase,kind,severity,note\n闭眼买,forbidden,block,承诺收益\n必赚,forbidden,warn,\n",
                    encoding="utf-8")
    done = run_flask(app, "lexicon", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "added 2" in done.stdout and "version 1" in done.stdout
    again = run_flask(app, "lexicon", "import", str(path))
    assert again.returncode == 0 and "unchanged 2" in again.stdout
    assert _version(app) == 1


def test_import_with_bad_rows_reports_each_row_and_imports_nothing(app, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("phrase,kind,severity,note\n好词,forbidden,block,ok\n坏词,forbidden,fatal,x\n,required,block,y\n",
                    encoding="utf-8")
    done = run_flask(app, "lexicon", "import", str(path))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("row ")]
    assert [line.split(":")[0] for line in lines] == ["row 3", "row 4"]
    assert done.stdout == ""
    assert _version(app) == 0


def test_scan_prints_one_json_object_with_exact_offsets(lexicon_app, tmp_path):
    path = tmp_path / "script.txt"
    path.write_bytes(TEXT.encode("utf-8"))
    report = _scan(lexicon_app, str(path))
    assert set(report) == {"lexicon_version", "blocking", "findings"}
    assert report["lexicon_version"] == lexicon_app.lexicon_version
    assert report["blocking"] is True
    _assert_offsets(report, TEXT)
    assert any(f["text"] == "稳 赚 不 赔" and f["severity"] == "block" for f in report["findings"])
    # stdin gives the same answer
    assert _scan(lexicon_app, "-", input_text=TEXT) == report


def test_scan_of_clean_text_exits_zero_and_is_not_blocking(lexicon_app):
    text = "今天聊聊资产配置：分散投资、长期持有。投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
    report = _scan(lexicon_app, "--platform", "douyin", "-", input_text=text)
    assert report["blocking"] is False
    _assert_offsets(report, text)


def test_scan_with_advisor_checks_their_sac_number(lexicon_app):
    with lexicon_app.app_context():
        advisor = make_user("advisor", sac="S1234567890123", name="张投顾")
        db.session.commit()
        email, name = advisor.email, advisor.advisor_profile.real_name
    body = f"我是{name}，执业证书编号{{sac}}。投资有风险，入市需谨慎。以上内容仅供参考，不构成投资建议。"
    right = _scan(lexicon_app, "--advisor", email, "-", input_text=body.format(sac="S1234567890123"))
    wrong = _scan(lexicon_app, "--advisor", email, "-", input_text=body.format(sac="S9999999999999"))
    assert not any(f["rule"].startswith("sac_") for f in right["findings"])
    assert any(f["rule"] == "sac_mismatch" for f in wrong["findings"])
    _assert_offsets(wrong, body.format(sac="S9999999999999"))


@pytest.mark.parametrize("case", ["invalid_utf8", "missing_file", "unknown_advisor", "unknown_platform"])
def test_scan_exits_2_on_unreadable_input(lexicon_app, tmp_path, case):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("合规文本".encode() + b"\xff\xfe\n")
    args = {
        "invalid_utf8": [str(bad)],
        "missing_file": [str(tmp_path / "nope.txt")],
        "unknown_advisor": ["--advisor", "nobody@example.com", "-"],
        "unknown_platform": ["--platform", "myspace", "-"],
    }[case]
    done = run_flask(lexicon_app, "lexicon", "scan", *args, input_text="文本")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" and done.stderr.strip()


def test_invalid_utf8_on_stdin_exits_2(lexicon_app):
    env = subprocess_env(lexicon_app)
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "lexicon", "scan", "-"], cwd=ROOT,
                          env=env, input=b"\xc3\x28 broken", capture_output=True, timeout=120)
    assert done.returncode == 2 and b"UTF-8" in done.stderr


def test_seed_demo_loads_the_default_lexicon_once(app):
    assert run_flask(app, "seed-demo").returncode == 0
    assert run_flask(app, "seed-demo").returncode == 0
    assert _version(app) == 1
    report = _scan(app, "-", input_text="保证收益，稳赚不赔")
    assert report["lexicon_version"] == 1 and report["blocking"] is True
