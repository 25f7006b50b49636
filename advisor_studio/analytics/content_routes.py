"""Content performance pages: per package and channel, views to funded accounts, and the CSV export of
exactly what the page shows (``analytics/content.py`` is the one query layer of both)."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user

from advisor_studio.access import require, roles_required
from advisor_studio.accounts.models import User, UserRole
from advisor_studio.analytics import content
from advisor_studio.analytics.permissions import advisor_scope, can_view_analytics, sees_everyone
from advisor_studio.distribution.models import CHANNEL_PLATFORMS, PLATFORM_LABELS
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.web import query_date, query_int, query_page

bp = Blueprint("content_performance", __name__, url_prefix="/analytics/content")

PAGE_SIZES = (25, 50, 100)


def _raw_filters() -> dict:
    """What the request asked for, as typed (to refill the filter form even when it is refused)."""
    return {name: (request.args.get(name) or "").strip()[:40] for name in ("from", "to", "advisor", "platform",
                                                                           "package")}


def _filters() -> content.Filters:
    platform = (request.args.get("platform") or "").strip() or None
    return content.make_filters(date_from=query_date("from"), date_to=query_date("to"),
                                advisor_scope=advisor_scope(current_user), advisor_id=query_int("advisor"),
                                platform=platform[:40] if platform else None, package_id=query_int("package"))


def _advisors() -> list[User]:
    if not sees_everyone(current_user):
        return []
    stmt = (sa.select(User).join(UserRole, UserRole.user_id == User.id).where(UserRole.role == "advisor")
            .order_by(User.name, User.id))
    return list(db.session.scalars(stmt).unique())


def _per_page() -> int:
    number = query_int("per_page")
    return number if number in PAGE_SIZES else current_app.config.get("PAGE_SIZE", 25)


@bp.route("")
@roles_required("advisor", "compliance", "admin")
def index():
    """The table of (package, channel) rows with totals, filtered by period, advisor, platform, package."""
    require(can_view_analytics(current_user))
    context = {"raw": _raw_filters(), "advisors": _advisors(), "platforms": CHANNEL_PLATFORMS,
               "platform_labels": PLATFORM_LABELS, "sees_everyone": sees_everyone(current_user),
               "rate_text": content.rate_text}
    try:
        filters = _filters()
    except ValidationError as err:
        db.session.rollback()
        return render_template("analytics/content_performance.html", error=err, page=None, totals=None,
                               filters=None, **context), 400
    page = content.performance_page(filters, page=query_page(), per_page=_per_page())
    return render_template("analytics/content_performance.html", error=None, page=page,
                           totals=content.totals(filters), filters=filters, **context)


@bp.route("/export.csv")
@roles_required("advisor", "compliance", "admin")
def export():
    """The same rows as the page (every page, same filters, same numbers) as CSV."""
    require(can_view_analytics(current_user))
    filters = _filters()  # a bad filter answers 400 with the message, as the page does
    out = io.StringIO()
    out.write("\ufeff")  # UTF-8 with BOM: Excel then shows Chinese correctly
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(content.COLUMNS)
    for row in content.performance_rows(filters):
        writer.writerow([_csv_cell(value) if name in content.TEXT_COLUMNS else value
                         for name, value in zip(content.COLUMNS, content.csv_record(row), strict=True)])
    name = f"content-performance-{filters.date_from.isoformat()}-{filters.date_to.isoformat()}.csv"
    return Response(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula in Excel: a package title must not run as one.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
