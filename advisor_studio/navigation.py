"""One navigation, by role (product.md "Screens"); entries appear once their page exists."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

# (role, label, endpoint). An endpoint that is not registered yet is left out of the menu.
MENU = [
    ("advisor", _l("Dashboard"), "core.home"),
    ("advisor", _l("Scripts"), "studio.scripts"),
    ("advisor", _l("Packages"), "studio.packages"),
    ("advisor", _l("Links"), "referrals.links"),
    ("advisor", _l("Groups"), "referrals.groups"),
    ("advisor", _l("Sharing tasks"), "sharing.tasks"),
    ("advisor", _l("My results"), "analytics.my_results"),
    ("advisor", _l("Content performance"), "content_performance.index"),
    ("compliance", _l("Review queue"), "compliance.queue"),
    ("compliance", _l("Approved"), "compliance.approved"),
    ("compliance", _l("Lexicon"), "compliance.lexicon"),
    ("compliance", _l("Risk disclaimer"), "video.disclaimer"),
    ("compliance", _l("Fraud flags"), "fraud.flags"),
    ("compliance", _l("Content performance"), "content_performance.index"),
    ("compliance", _l("Audit log"), "core.audit_log"),
    ("compliance", _l("Analytics"), "analytics.overview"),
    ("compliance", _l("Leaderboard"), "analytics.leaderboard"),
    ("mcn", _l("Assets"), "distribution.assets"),
    ("mcn", _l("Publications"), "distribution.publications"),
    ("admin", _l("Users"), "accounts.users"),
    ("admin", _l("Partners"), "distribution.partners"),
    ("admin", _l("Channels"), "distribution.channels"),
    ("admin", _l("Webhooks"), "distribution.webhooks_log"),
    ("admin", _l("Groups"), "referrals.admin_groups"),
    ("admin", _l("Analytics"), "analytics.overview"),
    ("admin", _l("Leaderboard"), "analytics.leaderboard"),
    ("admin", _l("Content performance"), "content_performance.index"),
    ("admin", _l("Reconciliation"), "reconciliation.index"),
    ("admin", _l("Audit log"), "core.audit_log"),
]


def menu_for(user) -> list[dict]:
    """Menu entries for the user's roles, without duplicates, in product order."""
    if not getattr(user, "is_authenticated", False):
        return []
    seen: set[str] = set()
    items = []
    for role, label, endpoint in MENU:
        if endpoint in seen or not user.has_role(role) or endpoint not in current_app.view_functions:
            continue
        seen.add(endpoint)
        items.append({"label": label, "endpoint": endpoint, "role": role})
    return items
