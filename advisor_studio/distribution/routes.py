"""The distribution blueprint: the mcn portal, partner administration and the webhook delivery log.

The views live in three modules by audience (portal_routes: mcn users; admin_routes: partners,
channels, keys; webhook_routes: deliveries) and register on this one blueprint, so their endpoints
keep the ``distribution.`` prefix the navigation names.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("distribution", __name__)

from advisor_studio.distribution import admin_routes, portal_routes, webhook_routes  # noqa: E402,F401
