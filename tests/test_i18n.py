"""Every user-facing string in code and templates has a zh_CN translation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from tests.conftest import ROOT

CATALOGUE = ROOT / "advisor_studio/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def test_every_message_has_a_chinese_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "lazy_gettext", "-o", str(pot), "."], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)
    with open(pot, "rb") as fh:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    with open(CATALOGUE, "rb") as fh:
        catalogue = read_po(fh)
    missing = sorted(mid for mid in extracted if not (catalogue.get(mid) and catalogue.get(mid).string))
    assert missing == [], f"untranslated (run `make messages` and translate): {missing[:20]}"
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert fuzzy == []
