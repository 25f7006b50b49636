"""Migrations stand alone: no application imports (a migration must mean the same thing after the code
it was written beside has changed) and no autogenerate leftovers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VERSIONS = sorted((Path(__file__).resolve().parents[1] / "migrations" / "versions").glob("*.py"))


def test_there_are_migrations():
    assert len(VERSIONS) >= 10


@pytest.mark.parametrize("path", VERSIONS, ids=[p.name for p in VERSIONS])
def test_a_migration_imports_only_alembic_and_sqlalchemy(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"alembic", "sqlalchemy", "__future__", "datetime", "json", "hashlib"}, imported


@pytest.mark.parametrize("path", VERSIONS, ids=[p.name for p in VERSIONS])
def test_no_autogenerate_leftovers(path):
    text = path.read_text(encoding="utf-8")
    assert "please adjust" not in text and "advisor_studio" not in text
