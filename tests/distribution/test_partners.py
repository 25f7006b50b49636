"""Partners, channels and API keys: keys are stored hashed, shown once and revocable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from advisor_studio.accounts.models import User
from advisor_studio.distribution import services
from advisor_studio.distribution.models import Channel, PartnerApiKey
from advisor_studio.errors import Conflict, ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import services as referrals
from tests.conftest import signed_in
from tests.test_core import run_flask


def test_partner_key_is_stored_only_as_hash_and_authenticates(app_ctx):
    partner, key = services.create_partner("蓝海MCN", ["douyin:@lanhai", "bilibili:蓝海财经"], actor="test")
    db.session.commit()
    stored = db.session.scalars(sa.select(PartnerApiKey)).one()
    assert key not in (stored.key_hash, stored.prefix) and stored.key_hash == services.hash_api_key(key)
    assert services.partner_for_api_key(key).id == partner.id
    assert services.partner_for_api_key(key + "x") is None
    assert services.partner_for_api_key(None) is None
    assert sorted((c.platform, c.handle) for c in partner.channels) == [("bilibili", "蓝海财经"), ("douyin", "@lanhai")]


def test_revoked_key_no_longer_authenticates(app_ctx):
    partner, key = services.create_partner("蓝海MCN", [], actor="test")
    stored = db.session.scalars(sa.select(PartnerApiKey)).one()
    with pytest.raises(ValidationError):
        services.revoke_api_key(stored, actor="test", reason="")
    services.revoke_api_key(stored, actor="test", reason="leaked in a chat")
    assert services.partner_for_api_key(key) is None
    second = services.issue_api_key(partner, actor="test")
    assert services.partner_for_api_key(second).id == partner.id


@pytest.mark.parametrize("spec", ["douyin", "tiktok:@x", "douyin:", ":handle"])
def test_bad_channel_specs_are_refused(app_ctx, spec):
    with pytest.raises(ValidationError):
        services.create_partner("X", [spec], actor="test")


def test_duplicate_partner_or_channel_is_refused(app_ctx):
    services.create_partner("蓝海MCN", ["douyin:@lanhai"], actor="test")
    with pytest.raises(Conflict):
        services.create_partner("蓝海MCN", [], actor="test")
    with pytest.raises(Conflict):
        services.create_partner("另一家", ["douyin:@lanhai"], actor="test")


def test_cli_prints_the_key_alone_on_the_last_line(app):
    result = run_flask(app, "partners", "create", "--name", "星河MCN", "--channel", "douyin:@xinghe",
                       "--channel", "kuaishou:@xinghe_ks")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith(services.KEY_PREFIX) and " " not in key
    with app.app_context():
        assert services.partner_for_api_key(key).name == "星河MCN"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Channel)) == 2
    other = run_flask(app, "partners", "create", "--name", "X", "--channel", "other:@x")  # an unlisted platform
    assert other.returncode == 0, other.stderr
    bad = run_flask(app, "partners", "create", "--name", "Y", "--channel", "myspace:@y")
    assert bad.returncode != 0 and "channel" in bad.stderr


def test_scanner_and_distribution_agree_on_platforms():
    from advisor_studio.compliance.scanner import PLATFORMS as SCANNER_PLATFORMS
    from advisor_studio.distribution.models import CHANNEL_PLATFORMS, PLATFORM_LABELS, PLATFORM_OTHER, PLATFORMS

    assert set(PLATFORMS) == set(SCANNER_PLATFORMS)
    # Channels may also be on an unlisted platform; every channel platform has a label.
    assert set(CHANNEL_PLATFORMS) == set(PLATFORMS) | {PLATFORM_OTHER} == set(PLATFORM_LABELS)


def test_a_channel_is_named_by_its_platform_in_the_readers_language_not_by_code(app, users):
    with app.app_context():
        partner, _key = services.create_partner("星河MCN", ["kuaishou:xinghe"], actor="test")
        channel = partner.channels[0]
        advisor = db.session.get(User, users["advisor"].id)
        referrals.create_link(owner=advisor, actor=advisor, destination="https://kaihu.example.com/open",
                              channel=channel)
        db.session.commit()
        with app.test_request_context():
            with force_locale("zh_CN"):
                assert channel.label == "星河MCN · 快手 · xinghe"
            with force_locale("en"):
                assert channel.label == "星河MCN · Kuaishou · xinghe"
    page = signed_in(app, users["advisor"]).get("/referrals/links").get_data(as_text=True)
    assert "星河MCN · 快手 · xinghe" in page and "kuaishou" not in page
