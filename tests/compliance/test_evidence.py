"""The evidence pack: one ZIP per package with every record of what was approved and where it went,
and a standard-library verify.py that re-checks file hashes, approval manifests and audit links."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.audit import AuditEntry
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval, Review
from advisor_studio.dbtypes import utcnow
from advisor_studio.distribution import services as distribution
from advisor_studio.distribution.models import Assignment
from advisor_studio.extensions import db
from advisor_studio.integrity.downloads import Audience, rendition_link
from advisor_studio.studio.models import Package
from tests.conftest import signed_in
from tests.integrity.conftest import fetch
from tests.studio.test_pages import approved_package


@pytest.fixture
def story(app, users):
    """A package that was approved, downloaded, published, withdrawn and taken down; returns ids."""
    package_id = approved_package(app, users["advisor"].id, users["compliance"].id)
    with app.app_context():
        package = db.session.get(Package, package_id)
        officer = db.session.get(User, users["compliance"].id)
        review = db.session.scalars(sa.select(Review).where(Review.package_id == package_id)).one()
        compliance.add_comment(review, officer, "字幕第3行请补充风险提示。")
        assignment = db.session.scalars(sa.select(Assignment).where(Assignment.package_id == package_id)).one()
        db.session.commit()
        with app.test_request_context():
            url = rendition_link(package.rendition, Audience(partner_id=assignment.partner_id,
                                                             assignment_id=assignment.id))
        assignment_id, rendition_id = assignment.id, package.rendition_id
    # (On S3 the follow is a redirect to a presigned GET; fetch follows it.)
    assert fetch(app, url, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200
    with app.app_context():
        assignment = db.session.get(Assignment, assignment_id)
        post = f"https://www.douyin.com/video/{7300000000000000000 + assignment_id}"
        distribution.report_publication(assignment, platform="douyin", post_url=post,
                                        published_at=utcnow() - timedelta(minutes=5), actor="partner")
        db.session.commit()
        compliance.withdraw(db.session.get(Package, package_id), db.session.get(User, users["compliance"].id),
                            "误导性表述")
        db.session.commit()
        distribution.confirm_takedown(db.session.get(Assignment, assignment_id), post_url=post,
                                      removed_at=utcnow(), actor="partner")
        db.session.commit()
    return {"package_id": package_id, "assignment_id": assignment_id, "rendition_id": rendition_id}


def download_pack(app, record, package_id: int):
    return signed_in(app, record).get(f"/compliance/packages/{package_id}/evidence.zip")


def extract(data: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(into)
        names = zf.namelist()
    (root,) = {name.split("/", 1)[0] for name in names}
    return into / root


def run_verify(folder: Path) -> subprocess.CompletedProcess:
    # -I: isolated mode, so nothing of this project (or its virtualenv's site-packages) is importable.
    return subprocess.run([sys.executable, "-I", "verify.py"], cwd=folder, capture_output=True, text=True,
                          timeout=60)


def relist(folder: Path, relative: str) -> None:
    """Re-hash one file into manifest.json, as a forger would, so only the deeper checks can catch it."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    data = (folder / relative).read_bytes()
    for item in manifest["files"]:
        if item["path"] == relative:
            item["sha256"], item["size"] = hashlib.sha256(data).hexdigest(), len(data)
    (folder / "manifest.json").write_text(json.dumps(manifest), "utf-8")


@pytest.fixture
def pack(app, users, story, tmp_path):
    resp = download_pack(app, users["compliance"], story["package_id"])
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return extract(resp.data, tmp_path / "pack")


# --- what it holds -------------------------------------------------------------------------------------


def test_evidence_zip_holds_every_part_of_the_package_record(app, users, story, tmp_path):
    resp = download_pack(app, users["compliance"], story["package_id"])

    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert f"evidence-package-{story['package_id']}.zip" in resp.headers["Content-Disposition"]
    assert "no-store" in resp.headers["Cache-Control"]
    folder = extract(resp.data, tmp_path / "pack")
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    listed = {item["path"] for item in manifest["files"]}
    assert {"README.txt", "verify.py", "package.json", "scans.json", "reviews.json", "renditions.json",
            "assignments.json", "publications.json", "takedowns.json", "downloads.jsonl",
            "audit/entries.jsonl"} <= listed
    with app.app_context():
        approvals = db.session.scalars(sa.select(Approval).where(Approval.package_id == story["package_id"])).all()
        package = db.session.get(Package, story["package_id"])
        rendition_sha = package.rendition.sha256
        revision_id = package.script_revision_id
        for approval in approvals:
            document = json.loads((folder / f"approvals/approval-{approval.id}.json").read_text("utf-8"))
            assert document["manifest"] == approval.manifest
            assert document["manifest_sha256"] == approval.manifest_sha256
    assert any(p.startswith("approvals/") for p in manifest["approval_manifests"])
    assert f"script_revisions/revision-{revision_id}.json" in listed

    scans = json.loads((folder / "scans.json").read_text("utf-8"))
    assert scans and all(isinstance(s["lexicon_version"], int) for s in scans)
    reviews = json.loads((folder / "reviews.json").read_text("utf-8"))
    assert any(r["decision"] == "approve" for r in reviews)
    assert any(c["body"] == "字幕第3行请补充风险提示。" for r in reviews for c in r["comments"])
    renditions = json.loads((folder / "renditions.json").read_text("utf-8"))
    assert [r["sha256"] for r in renditions if r["approved_by_approvals"]] == [rendition_sha]
    assignments = json.loads((folder / "assignments.json").read_text("utf-8"))
    assert [(a["id"], a["status"]) for a in assignments] == [(story["assignment_id"], "withdrawn")]
    assert len(json.loads((folder / "publications.json").read_text("utf-8"))) == 1
    assert len(json.loads((folder / "takedowns.json").read_text("utf-8"))) == 1
    downloads = [json.loads(line) for line in (folder / "downloads.jsonl").read_text("utf-8").splitlines()]
    assert [(d["assignment_id"], d["status"] in (200, 302), d["ip_prefix"]) for d in downloads] == [
        (story["assignment_id"], True, "203.0.113.0/24")]

    entries = [json.loads(line) for line in (folder / "audit/entries.jsonl").read_text("utf-8").splitlines()]
    actions = {e["action"] for e in entries}
    assert {"package.created", "approval.granted", "review.commented", "assignment.created",
            "publication.reported", "assignment.withdrawn", "takedown.confirmed", "file.downloaded"} <= actions
    assert all({"prev_hash", "entry_hash", "seq"} <= e.keys() for e in entries)
    readme = (folder / "README.txt").read_text("utf-8")
    assert "证据包" in readme and "Evidence pack" in readme and "verify.py" in readme


def test_export_is_audited_with_the_manifest_sha256(app, users, story):
    resp = download_pack(app, users["admin"], story["package_id"])

    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        manifest_bytes = zf.read(f"evidence-package-{story['package_id']}/manifest.json")
    with app.app_context():
        entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "evidence.exported")).one()
        assert entry.object_id == str(story["package_id"])
        assert entry.actor_id == users["admin"].id
        assert entry.details["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()


def test_pack_of_a_package_never_approved_still_verifies(app, users, tmp_path):
    from tests.studio.test_pages import package_for

    package_id = package_for(app, users["advisor"].id, users["compliance"].id)

    resp = download_pack(app, users["compliance"], package_id)

    assert resp.status_code == 200
    result = run_verify(extract(resp.data, tmp_path / "pack"))
    assert result.returncode == 0, result.stdout


# --- verify.py -----------------------------------------------------------------------------------------


def test_verify_script_passes_on_an_untouched_pack(pack):
    result = run_verify(pack)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK")


def test_verify_script_uses_only_the_standard_library(pack):
    source = (pack / "verify.py").read_text("utf-8")
    imported = {line.split()[1].split(".")[0] for line in source.splitlines()
                if line.startswith(("import ", "from "))}
    assert imported <= {"__future__", "hashlib", "json", "sys", "pathlib"}


def test_verify_script_names_a_file_with_one_changed_byte(pack):
    target = pack / "downloads.jsonl"
    data = bytearray(target.read_bytes())
    data[3] ^= 0x01
    target.write_bytes(bytes(data))

    result = run_verify(pack)

    assert result.returncode == 1
    assert "downloads.jsonl: SHA-256 is" in result.stdout


def test_verify_script_catches_a_changed_approval_manifest_field_even_when_relisted(pack):
    relative = json.loads((pack / "manifest.json").read_text("utf-8"))["approval_manifests"][-1]
    document = json.loads((pack / relative).read_text("utf-8"))
    document["manifest"]["caption"] = document["manifest"]["caption"] + "稳赚不赔"
    (pack / relative).write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    relist(pack, relative)

    result = run_verify(pack)

    assert result.returncode == 1
    assert f"{relative}: the approval manifest hashes to" in result.stdout


def test_verify_script_catches_a_changed_audit_entry_and_the_broken_link_after_it(pack):
    path = pack / "audit/entries.jsonl"
    entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    # An entry whose successor is also in the pack, so the link check applies.
    index = next(i for i in range(len(entries) - 1) if entries[i + 1]["seq"] == entries[i]["seq"] + 1)
    victim = entries[index]
    victim["details"]["reason"] = "rewritten"
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), "utf-8")
    relist(pack, "audit/entries.jsonl")

    result = run_verify(pack)

    assert result.returncode == 1
    assert f"audit entry seq {victim['seq']}: its fields hash to" in result.stdout

    # A forger who also recomputes the entry's own hash still breaks the link to the next entry.
    fields = {k: victim[k] for k in ("seq", "at", "actor_id", "actor_label", "action", "object_type",
                                     "object_id", "details", "prev_hash")}
    victim["entry_hash"] = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                                     ensure_ascii=False).encode()).hexdigest()
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries), "utf-8")
    relist(pack, "audit/entries.jsonl")

    result = run_verify(pack)

    assert result.returncode == 1
    assert f"audit entries seq {victim['seq']} -> {victim['seq'] + 1}: chain link broken" in result.stdout
    assert "its fields hash to" not in result.stdout


def test_verify_script_names_an_added_file(pack):
    (pack / "extra.txt").write_text("slipped in", "utf-8")

    result = run_verify(pack)

    assert result.returncode == 1
    assert "extra.txt: not listed in manifest.json" in result.stdout


def test_audit_entries_in_the_pack_hash_exactly_as_the_application_hashes_them(app, pack):
    entries = [json.loads(line) for line in (pack / "audit/entries.jsonl").read_text("utf-8").splitlines()]
    with app.app_context():
        stored = {e.seq: e.entry_hash for e in db.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.seq.in_([x["seq"] for x in entries])))}
    assert {e["seq"]: e["entry_hash"] for e in entries} == stored


# --- who may download it ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["advisor", "mcn"])
def test_advisors_and_mcn_users_cannot_download_an_evidence_pack(app, users, story, role):
    resp = download_pack(app, users[role], story["package_id"])

    assert resp.status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "evidence.exported")) == 0


def test_evidence_pack_of_a_missing_package_answers_404(app, users):
    assert download_pack(app, users["compliance"], 999_999).status_code == 404


def test_package_page_offers_the_evidence_pack_to_officers_only(app, users, story):
    officer = signed_in(app, users["compliance"]).get(f"/studio/packages/{story['package_id']}")
    author = signed_in(app, users["advisor"]).get(f"/studio/packages/{story['package_id']}")

    assert 'data-testid="evidence-pack"' in officer.get_data(as_text=True)
    assert 'data-testid="evidence-pack"' not in author.get_data(as_text=True)
