"""Analytics pages: the funnel (with its CSV export), the star-advisor leaderboard and the AARRR panel.

Thin views over ``analytics.queries``: parse the GET form, scope to the user (advisors see only their
own rows), call the query layer, render. The CSV export takes the page's own query string and calls
the same functions, so it holds exactly the numbers shown.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from flask import Blueprint, Response, render_template, request
from flask_babel import format_datetime, get_timezone
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from advisor_studio.access import require, roles_required
from advisor_studio.analytics import queries
from advisor_studio.analytics.forms import FunnelFilterForm
from advisor_studio.analytics.permissions import advisor_scope, can_view_analytics, sees_everyone
from advisor_studio.dbtypes import utcnow
from advisor_studio.errors import ValidationError

bp = Blueprint("analytics", __name__, url_prefix="/analytics")

VIEWERS = ("advisor", "compliance", "admin")


class Request:
    """The checked period, grouping and filters of one analytics request (or the form's errors)."""

    def __init__(self, form: FunnelFilterForm, scope: int | None):
        self.form = form
        self.scope = scope
        self.date_from, self.date_to = queries.default_range()
        self.by: str | None = None
        self.filters: dict = {}
        self.excluded = False
        self.ok = form.validate()
        if form.date_from.data:
            self.date_from = form.date_from.data
        elif not form.date_from.raw_data or not form.date_from.raw_data[0]:
            form.date_from.data = self.date_from  # show the default period in the form
        if form.date_to.data:
            self.date_to = form.date_to.data
        elif not form.date_to.raw_data or not form.date_to.raw_data[0]:
            form.date_to.data = self.date_to
        if not self.ok:
            return
        self.by = form.by.data or None
        self.excluded = bool(form.excluded.data)
        try:
            queries.check_range(self.date_from, self.date_to)
            self.filters = queries.check_filters(scope, form.filter_values())
        except ValidationError as err:
            self.fail(err)

    def fail(self, err: ValidationError) -> None:
        self.ok = False
        placed = False
        for name in err.fields:
            if name in self.form:
                self.form[name].errors = [*self.form[name].errors, err.message]
                placed = True
        if not placed:
            self.form.form_errors.append(err.message)

    @property
    def errors(self) -> list[str]:
        messages = list(self.form.form_errors)
        for field in self.form:
            messages += [f"{field.label.text}: {message}" for message in field.errors]
        return messages


def _request() -> Request:
    require(can_view_analytics(current_user))
    form = FunnelFilterForm(request.args)
    return Request(form, advisor_scope(current_user))


def _fill_choices(form: FunnelFilterForm, choices: dict) -> None:
    for name in ("advisor", "package", "platform", "partner", "channel", "group"):
        form[name].choices = [SelectChoice("", _("All"))] + [SelectChoice(str(value), label)
                                                              for value, label in choices[name]]


def _freshness(as_of) -> str | None:
    """"14:05" when the rollups are fresh as of today (in the user's time zone), else date and time."""
    if as_of is None:
        return None
    zone = get_timezone()
    same_day = as_of.astimezone(zone).date() == utcnow().astimezone(zone).date()
    return format_datetime(as_of, "HH:mm" if same_day else "yyyy-MM-dd HH:mm")


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _amount(value) -> str:
    return f"{value:,.2f}"


def _change(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


@bp.app_template_filter("analytics_percent")
def analytics_percent(value):
    return _percent(value)


@bp.app_template_filter("analytics_amount")
def analytics_amount(value):
    return _amount(value)


@bp.app_template_filter("analytics_change")
def analytics_change(value):
    return _change(value)


def _chart_data(result: queries.Funnel, daily: queries.Funnel | None) -> dict:
    """The figures the charts draw (analytics.js reads them from a JSON block: no inline script)."""
    total = result.total
    days, series = [], []
    if daily is not None:
        by_day = {row.key: row for row in daily.rows}
        span = (result.date_to - result.date_from).days + 1
        days = [(result.date_from + timedelta(days=n)).isoformat() for n in range(span)]  # every day, gaps at 0
        empty = queries.FunnelRow()
        series = [{"name": str(queries.METRIC_LABELS[m]), "data": [getattr(by_day.get(d, empty), m) for d in days]}
                  for m in ("clicks", "unique_visitors", "signups", "accounts_opened")]
    return {
        "steps": [{"name": str(queries.METRIC_LABELS[m]), "value": getattr(total, m)}
                  for m in ("clicks", "unique_visitors", "signups", "accounts_opened", "funded_count", "first_trades")],
        "daily": {"days": days, "series": series},
        "bars": {
            "labels": [row.label for row in result.rows[:20]] if result.by else [],
            "values": [row.accounts_opened for row in result.rows[:20]] if result.by else [],
            "name": str(queries.METRIC_LABELS["accounts_opened"]),
        },
    }


@bp.route("/", endpoint="overview")
@bp.route("/my", endpoint="my_results")
@roles_required(*VIEWERS)
def funnel_page():
    params = _request()
    _fill_choices(params.form, queries.filter_choices(params.scope))
    result = daily = None
    if params.ok:
        result = queries.funnel(params.scope, params.date_from, params.date_to, by=params.by,
                                filters=params.filters, include_excluded=params.excluded)
        if params.by == "day":
            daily = result
        else:
            daily = queries.funnel(params.scope, params.date_from, params.date_to, by="day",
                                   filters=params.filters, compare=False)
    status = 200 if params.ok else 400
    return render_template("analytics/funnel.html", params=params, form=params.form, result=result,
                           chart=_chart_data(result, daily) if result else None,
                           freshness=_freshness(result.as_of) if result else None,
                           everyone=sees_everyone(current_user), export_query=request.query_string.decode(),
                           steps=queries.STEPS, step_labels=queries.STEP_LABELS,
                           metric_labels=queries.METRIC_LABELS, dimension_labels=queries.DIMENSION_LABELS,
                           segment_labels=queries.SEGMENT_LABELS), status


def csv_rows(result: queries.Funnel) -> list[list[str]]:
    """The funnel table as CSV rows: exactly the page's table (rows, total, previous period, excluded)."""
    step_names = [name for name, _top, _bottom in queries.STEPS]
    header = [str(queries.DIMENSION_LABELS[result.by]) if result.by else _("Group"), _("Key")]
    header += [str(queries.METRIC_LABELS[m]) for m in queries.METRICS]
    header += [str(queries.STEP_LABELS[s]) for s in step_names]

    def line(row: queries.FunnelRow, label: str | None = None, key="") -> list[str]:
        cells = [label if label is not None else row.label, "" if key is None else str(key)]
        cells += [_amount(row.funded_amount) if m == "funded_amount" else str(getattr(row, m)) for m in queries.METRICS]
        cells += [_percent(row.rate(s)) for s in step_names]
        return cells

    out = [header]
    for row in result.rows:
        out.append(line(row, key=row.export_key))
    if result.by:
        out.append(line(result.total, _("Total"), ""))
    if result.previous is not None:
        label = _("Previous period %(start)s – %(end)s", start=result.previous_from.isoformat(),
                  end=result.previous_to.isoformat())
        out.append(line(result.previous, label, ""))
    for segment, row in result.excluded.items():
        out.append(line(row, _("Excluded: %(what)s", what=str(queries.SEGMENT_LABELS[segment])), segment))
    return out


def _csv_cell(value: str) -> str:
    # A cell starting with = + - @ would be a formula in a spreadsheet; numbers keep their sign.
    if value and value[0] in "=+-@\t\r" and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value.replace(",", "").rstrip("%"))
        return True
    except ValueError:
        return False


@bp.route("/export.csv")
@roles_required(*VIEWERS)
def funnel_export():
    params = _request()
    if not params.ok:
        raise ValidationError(" ".join(params.errors) or _("The filters are invalid."), code="bad_filters")
    result = queries.funnel(params.scope, params.date_from, params.date_to, by=params.by, filters=params.filters,
                            include_excluded=params.excluded)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in csv_rows(result):
        writer.writerow([_csv_cell(cell) for cell in row])
    suffix = f"-{result.by}" if result.by else ""
    name = f"funnel-{result.date_from.isoformat()}-{result.date_to.isoformat()}{suffix}.csv"
    # UTF-8 with a BOM so spreadsheet programs show the Chinese labels correctly.
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename={name}", "Cache-Control": "no-store"})


@bp.route("/leaderboard")
@roles_required(*VIEWERS)
def leaderboard():
    params = _request()
    rows = queries.leaderboard(params.scope, params.date_from, params.date_to) if params.ok else []
    return render_template("analytics/leaderboard.html", params=params, form=params.form, rows=rows,
                           everyone=sees_everyone(current_user),
                           freshness=_freshness(queries.rollups.fresh_as_of())), 200 if params.ok else 400


@bp.route("/aarrr")
@roles_required(*VIEWERS)
def aarrr():
    params = _request()
    _fill_choices(params.form, queries.filter_choices(params.scope))
    panel = queries.aarrr(params.scope, params.date_from, params.date_to, params.filters) if params.ok else None
    return render_template("analytics/aarrr.html", params=params, form=params.form, panel=panel,
                           retention_days=queries.RETENTION_DAYS, everyone=sees_everyone(current_user),
                           freshness=_freshness(queries.rollups.fresh_as_of())), 200 if params.ok else 400
