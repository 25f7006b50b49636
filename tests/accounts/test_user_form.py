"""The admin user form: every problem shown at once, advisor fields only for advisors, and the
partner an mcn user must belong to."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from advisor_studio.accounts.models import AdvisorProfile, User
from advisor_studio.audit import AuditEntry
from advisor_studio.extensions import db
from tests.conftest import post_form, signed_in
from tests.factories import make_channel

NEW = "/admin/users/new"
GOOD_PASSWORD = "Granite-Orbit-Tulip-88"
SAC_REQUIRED = "Advisors need a SAC registration number."
SAC_FORMAT = "SAC registration number must be the letter S followed by 13 digits."
PARTNER_REQUIRED = ("An MCN partner user must belong to a partner: choose it (create the partner first if it is "
                    "not in the list).")
PARTNER_NOT_MCN = "Only users holding the MCN partner role can belong to a partner."


class _FieldErrors(HTMLParser):
    """Error texts by the name of the form control they follow (invalid-feedback or text-danger)."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, list[str]] = {}
        self._control: str | None = None
        self._capture: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea") and attrs.get("name") not in (None, "csrf_token"):
            self._control = attrs["name"]
        classes = (attrs.get("class") or "").split()
        if tag == "div" and self._control and ("invalid-feedback" in classes or "text-danger" in classes):
            self._capture = self.errors.setdefault(self._control, [])
            self._capture.append("")

    def handle_data(self, data):
        if self._capture is not None:
            self._capture[-1] += data

    def handle_endtag(self, tag):
        if tag == "div" and self._capture is not None:
            self._capture[-1] = self._capture[-1].strip()
            self._capture = None


def field_errors(html: str) -> dict[str, list[str]]:
    parser = _FieldErrors()
    parser.feed(html)
    return parser.errors


@pytest.fixture
def admin(app, users):
    """The admin reading the English UI, so messages are asserted by their msgid."""
    client = signed_in(app, users["admin"])
    assert post_form(client, "/language/en", {"next": "/"}, form_page="/").status_code == 302
    return client


@pytest.fixture
def partner_id(app) -> int:
    with app.app_context():
        channel = make_channel("蓝海MCN")
        db.session.commit()
        return channel.partner_id


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _new_user(**overrides) -> dict:
    data = {"email": "new.person@example.com", "name": "新同事", "password": GOOD_PASSWORD, "roles": ["advisor"],
            "sac_number": "S1234567890123", "bio": "", "partner_id": ""}
    data.update(overrides)
    return data


def test_new_user_form_shows_form_and_service_problems_together(app, admin, users):
    before = _count(app, User)
    resp = post_form(admin, NEW, _new_user(email=users["mcn"].email.upper(), name="", password="short",
                                           roles=["advisor", "mcn"], sac_number="S123"))
    assert resp.status_code == 400
    errors = field_errors(resp.get_data(as_text=True))
    # The form's own checks (name, password) and the services' (email, SAC, partner), all in one answer.
    assert set(errors) == {"email", "name", "password", "sac_number", "partner_id"}
    assert errors["email"] == [f"A user with email {users['mcn'].email} already exists."]
    assert errors["sac_number"] == [SAC_FORMAT]
    assert errors["partner_id"] == [PARTNER_REQUIRED]
    assert "Correct the 5 fields marked below; nothing was saved." in resp.get_data(as_text=True)
    assert _count(app, User) == before


def test_every_service_problem_is_reported_not_only_the_first(app, admin, users):
    before = _count(app, User)
    resp = post_form(admin, NEW, _new_user(email=users["compliance"].email, roles=["advisor", "mcn"],
                                           sac_number=users["advisor2"].sac_number, bio="长" * 2001))
    assert resp.status_code == 400
    errors = field_errors(resp.get_data(as_text=True))
    assert errors["email"] == [f"A user with email {users['compliance'].email} already exists."]
    assert errors["sac_number"] == [f"SAC registration number {users['advisor2'].sac_number} already belongs to "
                                    "another advisor."]
    assert errors["partner_id"] == [PARTNER_REQUIRED]
    assert "bio" in errors
    assert _count(app, User) == before


@pytest.mark.parametrize("sac", ["", "   "])
def test_missing_sac_number_of_an_advisor_is_required_not_a_format_error(app, admin, users, sac):
    resp = post_form(admin, NEW, _new_user(sac_number=sac))
    assert resp.status_code == 400
    assert field_errors(resp.get_data(as_text=True)) == {"sac_number": [SAC_REQUIRED]}
    page = f"/admin/users/{users['advisor'].id}"
    resp = post_form(admin, page, {"name": "A", "roles": ["advisor"], "real_name": "A", "sac_number": sac})
    assert resp.status_code == 400
    assert field_errors(resp.get_data(as_text=True)) == {"sac_number": [SAC_REQUIRED]}
    with app.app_context():
        assert db.session.get(AdvisorProfile, users["advisor"].id).sac_number == users["advisor"].sac_number


def test_advisor_fields_are_ignored_and_cleared_for_other_roles(app, admin, users, partner_id):
    resp = post_form(admin, NEW, _new_user(roles=["mcn"], sac_number="not a number", bio="投资十年",
                                           partner_id=str(partner_id), email="mcn.new@example.com"))
    assert resp.status_code == 302, field_errors(resp.get_data(as_text=True))
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "mcn.new@example.com"))
        assert user.roles == {"mcn"} and user.advisor_profile is None and user.partner_id == partner_id
    # On a page shown again for another problem, what was typed there is not kept either.
    resp = post_form(admin, NEW, _new_user(roles=["mcn"], sac_number="S7777777777777", bio="投资十年",
                                           email="bad address"))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "S7777777777777" not in html and "投资十年" not in html
    assert set(field_errors(html)) == {"email", "partner_id"}
    # Editing: an advisor who becomes an mcn user keeps the profile on record, untouched.
    page = f"/admin/users/{users['advisor2'].id}"
    resp = post_form(admin, page, {"name": "B", "roles": ["mcn"], "partner_id": str(partner_id),
                                   "real_name": "", "sac_number": "garbage", "bio": "新简介"})
    assert resp.status_code == 302
    with app.app_context():
        profile = db.session.get(AdvisorProfile, users["advisor2"].id)
        assert profile.sac_number == users["advisor2"].sac_number and profile.bio != "新简介"


def test_mcn_user_created_with_a_partner_sees_its_assets(app, admin, partner_id):
    resp = post_form(admin, NEW, _new_user(email="kite@example.com", roles=["mcn"], sac_number="",
                                           partner_id=str(partner_id)))
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "kite@example.com"))
        assert user.partner_id == partner_id
        actions = {(e.action, e.object_id) for e in db.session.scalars(sa.select(AuditEntry))}
        assert ("user.partner_changed", str(user.id)) in actions
        assert ("partner.member_linked", str(partner_id)) in actions
    client = app.test_client()
    assert post_form(client, "/login", {"email": "kite@example.com", "password": GOOD_PASSWORD}).status_code == 302
    portal = client.get("/portal/assets")
    assert portal.status_code == 200 and "蓝海MCN" in portal.get_data(as_text=True)


def test_mcn_role_needs_a_partner_when_created_or_edited(app, admin, users):
    before = _count(app, User)
    resp = post_form(admin, NEW, _new_user(email="nopartner@example.com", roles=["mcn"], sac_number=""))
    assert resp.status_code == 400
    assert field_errors(resp.get_data(as_text=True)) == {"partner_id": [PARTNER_REQUIRED]}
    assert _count(app, User) == before
    # An mcn user without a partner (made on the command line) gets one chosen at the next edit.
    resp = post_form(admin, f"/admin/users/{users['mcn'].id}", {"name": "改名", "roles": ["mcn"], "partner_id": ""})
    assert resp.status_code == 400
    assert field_errors(resp.get_data(as_text=True)) == {"partner_id": [PARTNER_REQUIRED]}
    with app.app_context():
        assert db.session.get(User, users["mcn"].id).name != "改名"


def test_a_partner_for_a_user_without_the_mcn_role_is_refused(app, admin, partner_id):
    before = _count(app, User)
    resp = post_form(admin, NEW, _new_user(partner_id=str(partner_id)))
    assert resp.status_code == 400
    assert field_errors(resp.get_data(as_text=True)) == {"partner_id": [PARTNER_NOT_MCN]}
    assert _count(app, User) == before


def test_unknown_partner_is_refused_as_an_invalid_choice(app, admin):
    resp = post_form(admin, NEW, _new_user(email="ghost@example.com", roles=["mcn"], sac_number="",
                                           partner_id="999999"))
    assert resp.status_code == 400
    assert list(field_errors(resp.get_data(as_text=True))) == ["partner_id"]


def test_form_marks_the_role_sections_for_its_script(admin, partner_id):
    html = admin.get(NEW).get_data(as_text=True)
    assert 'data-role-section="mcn"' in html and 'data-role-section="advisor"' in html
    assert "/static/js/user_form.js" in html
    assert 'data-testid="no-partners"' not in html


def test_form_says_to_create_a_partner_first_when_there_is_none(admin):
    html = admin.get(NEW).get_data(as_text=True)
    assert 'data-testid="no-partners"' in html and 'href="/admin/partners/new"' in html
