"""The approved master of a package: its advisor, compliance and admins download exactly the approved
bytes through a signed link (hash-checked and logged like every approved download); others get 404."""

from __future__ import annotations

import hashlib
import os

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import User
from advisor_studio.compliance import services as compliance
from advisor_studio.compliance.models import Approval
from advisor_studio.extensions import db
from advisor_studio.integrity.models import DownloadLog
from advisor_studio.studio import services as studio
from advisor_studio.studio.models import Package, Script
from tests.conftest import record_of, signed_in
from tests.factories import make_user
from tests.integrity.conftest import approved_package, fetch, tamper
from tests.studio.test_pages import approved_script

PAYLOAD = os.urandom(4000)


def master(package_id: int) -> str:
    return f"/studio/packages/{package_id}/approved-master.mp4"


@pytest.fixture
def pkg(storage_app, people):
    return approved_package(storage_app, people, PAYLOAD)


@pytest.fixture
def outsiders(storage_app):
    """Another advisor and an mcn user: signed in, but not entitled to this package's master."""
    with storage_app.app_context():
        made = {"advisor2": make_user("advisor"), "mcn": make_user("mcn")}
        db.session.commit()
        return {key: record_of(user) for key, user in made.items()}


def approved_sha256(app, package_id: int) -> str:
    with app.app_context():
        approval = db.session.scalars(sa.select(Approval).where(Approval.package_id == package_id)).one()
        return approval.manifest["rendition_sha256"]


@pytest.mark.parametrize("role", ["advisor", "compliance", "admin"])
def test_advisor_compliance_and_admin_download_exactly_the_approved_bytes(storage_app, people, pkg, role):
    client = signed_in(storage_app, people[role])
    resp = client.get(master(pkg.package_id))
    assert resp.status_code == 302
    got = fetch(storage_app, resp.headers["Location"])
    assert got.status_code == 200
    assert hashlib.sha256(got.data).hexdigest() == approved_sha256(storage_app, pkg.package_id) == pkg.sha256
    assert got.data == pkg.data
    with storage_app.app_context():
        log = db.session.scalars(sa.select(DownloadLog).order_by(DownloadLog.id.desc())).first()
        assert (log.user_id, log.rendition_id, log.via) == (people[role].id, pkg.rendition_id, "signed")
        assert log.status in (200, 302)


def test_the_package_page_offers_the_master_only_while_approved(storage_app, people, pkg):
    client = signed_in(storage_app, people["advisor"])
    page = client.get(f"/studio/packages/{pkg.package_id}").get_data(as_text=True)
    assert f'href="{master(pkg.package_id)}"' in page
    with storage_app.app_context():
        package = db.session.get(Package, pkg.package_id)
        compliance.withdraw(package, db.session.get(User, people["compliance"].id), "风险提示不完整")
        db.session.commit()
    page = client.get(f"/studio/packages/{pkg.package_id}").get_data(as_text=True)
    assert 'data-testid="download-master"' not in page
    assert client.get(master(pkg.package_id)).status_code == 404


@pytest.mark.parametrize("who", ["advisor2", "mcn"])
def test_other_users_get_404_for_the_master(storage_app, pkg, outsiders, who):
    client = signed_in(storage_app, outsiders[who])
    assert client.get(master(pkg.package_id)).status_code == 404
    with storage_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(DownloadLog.id))) == 0


def test_anonymous_is_sent_to_sign_in_and_an_unknown_package_is_404(storage_app, people, pkg):
    resp = storage_app.test_client().get(master(pkg.package_id))
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert signed_in(storage_app, people["admin"]).get(master(999999)).status_code == 404


def test_a_package_without_approval_has_no_master(storage_app, people):
    script_id = approved_script(storage_app, people["advisor"].id, people["compliance"].id)
    with storage_app.app_context():
        author = db.session.get(User, people["advisor"].id)
        package = studio.create_package(db.session.get(Script, script_id), author)
        db.session.commit()
        package_id = package.id
    for role in ("advisor", "compliance"):
        assert signed_in(storage_app, people[role]).get(master(package_id)).status_code == 404


def test_a_master_whose_stored_bytes_changed_is_not_delivered(storage_app, people, pkg):
    tamper(storage_app, pkg.key)
    resp = signed_in(storage_app, people["advisor"]).get(master(pkg.package_id))
    assert resp.status_code == 302
    client = storage_app.test_client()
    if storage_app.config["STORAGE_BACKEND"] == "s3":
        assert fetch(storage_app, resp.headers["Location"]).status_code == 409
        return
    from advisor_studio.integrity.downloads import IntegrityBreak

    with pytest.raises(IntegrityBreak):  # locally the stream is cut off before its last chunk
        got = client.get(resp.headers["Location"], buffered=False)
        try:
            b"".join(got.response)
        finally:
            got.close()
