"""Reconciliation: match the account-opening system's CSV of accounts opened in a period against the
``account_opened`` conversions recorded here, and keep the upload as evidence.

The file is read as it is: UTF-8, UTF-8 with Excel's BOM, or GBK/GB18030 (what Chinese back offices
export), detected and recorded. Each customer reference is hashed exactly as the conversion webhook
hashes it (``customer_ref_hash``), so references are compared without ever being stored in clear; the
result keeps the unmatched references as those hashes with the file's line numbers.

"Here" is every customer with an ``account_opened`` event inside the period, counted out again when an
``account_rejected`` of theirs follows it. The period's days are days of the firm's time zone
(``BABEL_DEFAULT_TIMEZONE``, Asia/Shanghai), the calendar the account-opening system writes its dates in.

Nothing is half-stored: the file is parsed and matched completely before its bytes go to storage, and
a failure after that removes the stored object again.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app
from flask_babel import gettext as _

from advisor_studio import audit, storage
from advisor_studio.analytics.models import ReconciliationUpload
from advisor_studio.errors import ValidationError
from advisor_studio.extensions import db
from advisor_studio.referrals import conversions
from advisor_studio.referrals.models import Conversion, Customer, ReferralLink

# Header names accepted for each column (compared trimmed and case-insensitively).
REF_COLUMNS = ("customer_ref", "customer_reference", "customer_id", "客户编号", "客户号", "客户代码")
DATE_COLUMNS = ("opened_on", "opening_date", "open_date", "opened_at", "开户日期", "开户时间")
AMOUNT_COLUMNS = ("amount", "funded_amount", "金额", "入金金额")
REF_MAX = 128  # as the conversion webhook's customer_ref
AMOUNT_MAX = Decimal("9999999999999999.99")  # what Numeric(18, 2) holds
PERIOD_MAX_DAYS = 366
PROBLEMS_SHOWN = 20
SPOOL_MEMORY = 8 * 1024 * 1024
LOOKUP_CHUNK = 500

ENC_UTF8 = "utf-8"
ENC_UTF8_BOM = "utf-8-sig"
ENC_GB18030 = "gb18030"

# Reasons a reference of their file has no opening here.
REASON_UNKNOWN = "unknown"  # no customer with this reference was ever reported here
REASON_NO_OPENING = "no_opening"  # the customer is known, but no account_opened was reported
REASON_OTHER_PERIOD = "other_period"  # account_opened was reported, outside the period
REASON_REJECTED = "rejected"  # opened in the period, then reversed by account_rejected
REASONS = (REASON_UNKNOWN, REASON_NO_OPENING, REASON_OTHER_PERIOD, REASON_REJECTED)

_DATE_RE = re.compile(r"([0-9]{4})[-/.]?([0-9]{1,2})[-/.]?([0-9]{1,2})(?:[ T].*)?")
_AMOUNT_RE = re.compile(r"[0-9]+(\.[0-9]{1,2})?")


class _CsvRefused(Exception):
    """The text read so far cannot be a CSV of accounts (raised inside the decoding loop)."""

    def __init__(self, error: ValidationError):
        self.error = error


@dataclass
class FileRow:
    line: int
    ref_hash: str
    opened_on: date
    amount: Decimal | None


@dataclass
class ParsedFile:
    encoding: str
    rows: list[FileRow]
    columns: dict[str, str]
    has_amount: bool


@dataclass
class Ours:
    customer_id: int
    ref_hash: str
    opened_at: datetime
    rejected: bool
    link_code: str | None
    advisor_id: int | None
    is_employee: bool


@dataclass
class Result:
    totals: dict = field(default_factory=dict)
    missing_here: list = field(default_factory=list)  # [line, ref_hash, opened_on, reason]
    missing_there: list = field(default_factory=list)  # [customer_id, ref_hash, opened_at, link_code, advisor_id]
    outside_period: list = field(default_factory=list)  # [line, opened_on]
    duplicates: list = field(default_factory=list)  # [line, first line]


def _refuse(message: str, code: str, fields: dict | None = None) -> ValidationError:
    return ValidationError(message, fields=fields or {"file": message}, code=code)


# --- reading the file -----------------------------------------------------------------------------------


def _spool(stream, max_bytes: int):
    """A seekable copy of the upload, refused (nothing kept) beyond ``max_bytes``."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 - closed by the caller
    total = 0
    try:
        while chunk := stream.read(storage.CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise _refuse(_("The file is larger than %(n)d MB; nothing was stored. Split the period into "
                                "several files.", n=max_bytes // (1024 * 1024)), "file_too_large")
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, total


def ref_hasher():
    """``conversions.customer_ref_hash`` with its key looked up once, for hashing a file's every row
    (the lookup derives the key on each call; tests/analytics checks that both agree)."""
    key = conversions._customer_ref_key()

    def ref_hash(customer_ref: str) -> str:
        return hmac.new(key, customer_ref.encode(), hashlib.sha256).hexdigest()

    return ref_hash


def _header_index(header: list[str], names: Iterable[str]) -> int | None:
    wanted = {n.casefold() for n in names}
    for index, cell in enumerate(header):
        if cell.strip().casefold() in wanted:
            return index
    return None


def parse_date(text: str) -> date | None:
    """YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD or YYYYMMDD, optionally followed by a time; None otherwise."""
    match = _DATE_RE.fullmatch(text.strip())
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _parse_amount(text: str) -> Decimal | None:
    cleaned = text.strip().replace(",", "")
    if not _AMOUNT_RE.fullmatch(cleaned):
        raise ValueError(text)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(text) from None
    if value > AMOUNT_MAX:
        raise ValueError(text)
    return value


# Unicode's control characters (category Cc) except the tab: binary data, not text.
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _has_control(text: str) -> bool:
    return _CONTROL_RE.search(text) is not None


def _read_rows(text_stream, encoding: str, *, max_rows: int) -> ParsedFile:
    reader = csv.reader(text_stream, strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
    except csv.Error as exc:
        message = _("The file is not a readable CSV: %(why)s.", why=str(exc)[:200])
        raise _CsvRefused(_refuse(message, "csv_invalid")) from None
    if header is None:
        raise _CsvRefused(_refuse(_("The file is empty; nothing was stored."), "empty_file"))
    if _has_control("".join(header)):
        raise _CsvRefused(_refuse(_("The file is not a text CSV (it contains binary data); nothing was stored."),
                                  "not_text"))
    ref_index, date_index = _header_index(header, REF_COLUMNS), _header_index(header, DATE_COLUMNS)
    amount_index = _header_index(header, AMOUNT_COLUMNS)
    missing = {}
    if ref_index is None:
        missing["customer_ref"] = _("missing column: one of %(names)s", names=", ".join(REF_COLUMNS))
    if date_index is None:
        missing["opened_on"] = _("missing column: one of %(names)s", names=", ".join(DATE_COLUMNS))
    if missing:
        raise _CsvRefused(ValidationError(
            _("The file lacks required columns (%(names)s); nothing was stored. The first row must name the "
              "columns, e.g. customer_ref,opened_on,amount.", names=", ".join(missing)),
            fields=missing, code="missing_columns"))
    ref_hash = ref_hasher()
    rows: list[FileRow] = []
    problems: dict[str, str] = {}
    problem_count = 0
    count = 0
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            count += 1
            if count > max_rows:
                raise _CsvRefused(_refuse(
                    _("The file has more than %(n)d rows, the most one upload may have; nothing was stored. Split "
                      "the period into several files.", n=max_rows), "too_many_rows"))
            line = reader.line_num
            problem = None
            ref = cells[ref_index].strip() if ref_index < len(cells) else ""
            raw_date = cells[date_index].strip() if date_index < len(cells) else ""
            opened_on = parse_date(raw_date)
            amount = None
            if _has_control("".join(cells)):
                problem = _("binary data or control characters")
            elif not ref:
                problem = _("the customer reference is empty")
            elif len(ref) > REF_MAX:
                problem = _("the customer reference is longer than %(n)d characters", n=REF_MAX)
            elif opened_on is None:
                problem = _("“%(value)s” is not a date (write YYYY-MM-DD)", value=raw_date[:40])
            elif amount_index is not None and amount_index < len(cells) and cells[amount_index].strip():
                try:
                    amount = _parse_amount(cells[amount_index])
                except ValueError:
                    problem = _("“%(value)s” is not an amount (e.g. 10000.00)", value=cells[amount_index][:40])
            if problem is not None:
                problem_count += 1
                if len(problems) < PROBLEMS_SHOWN:
                    problems[_("line %(n)d", n=line)] = problem
                continue
            rows.append(FileRow(line, ref_hash(ref), opened_on, amount))
    except csv.Error as exc:
        raise _CsvRefused(_refuse(_("The file is not a readable CSV (line %(n)d: %(why)s); nothing was stored.",
                                    n=reader.line_num, why=str(exc)[:200]), "csv_invalid")) from None
    if problem_count:
        raise _CsvRefused(ValidationError(
            _("%(n)d rows cannot be read; nothing was stored. Correct them and upload the file again.",
              n=problem_count), fields=problems, code="bad_rows"))
    if not rows:
        raise _CsvRefused(_refuse(_("The file has no data rows, only its header; nothing was stored."),
                                  "empty_file"))
    columns = {"customer_ref": header[ref_index].strip(), "opened_on": header[date_index].strip()}
    if amount_index is not None:
        columns["amount"] = header[amount_index].strip()
    return ParsedFile(encoding=encoding, rows=rows, columns=columns, has_amount=amount_index is not None)


def parse_file(spool, *, max_rows: int) -> ParsedFile:
    """Detect the encoding (BOM, else UTF-8, else GB18030) and read every row, or refuse the whole file."""
    head = spool.read(4)
    spool.seek(0)
    if not head:
        raise _refuse(_("The file is empty; nothing was stored."), "empty_file")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _refuse(_("The file is UTF-16 (“Unicode text”); nothing was stored. Save it from Excel as “CSV UTF-8” "
                        "and upload it again."), "unsupported_encoding")
    encodings = (ENC_UTF8_BOM,) if head.startswith(codecs.BOM_UTF8) else (ENC_UTF8, ENC_GB18030)
    for encoding in encodings:
        spool.seek(0)
        text = io.TextIOWrapper(spool, encoding=encoding, errors="strict", newline="")
        try:
            return _read_rows(text, encoding, max_rows=max_rows)
        except UnicodeDecodeError:
            continue
        except _CsvRefused as refused:
            raise refused.error from None
        finally:
            text.detach()  # the spool stays open for storing it
    raise _refuse(_("The file is neither UTF-8 nor GBK text (is it a spreadsheet or a binary file?); nothing was "
                    "stored. Save it as “CSV UTF-8” and upload it again."), "unknown_encoding")


# --- matching -------------------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or "Asia/Shanghai")


def _utc_bounds(period_from: date, period_to: date) -> tuple[datetime, datetime]:
    zone = _zone()
    start = datetime.combine(period_from, time.min, tzinfo=zone)
    end = datetime.combine(period_to + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def openings_here(period_from: date, period_to: date) -> dict[str, Ours]:
    """Customers with an account_opened in the period (their last one), and whether a rejection followed."""
    start, end = _utc_bounds(period_from, period_to)
    opened = (sa.select(Conversion.customer_id, sa.func.max(Conversion.occurred_at).label("opened_at"))
              .where(Conversion.event == "account_opened", Conversion.occurred_at >= start,
                     Conversion.occurred_at < end)
              .group_by(Conversion.customer_id).subquery("opened"))
    later = so.aliased(Conversion)
    rejected = (sa.select(later.id).where(later.customer_id == opened.c.customer_id,
                                          later.event == "account_rejected",
                                          later.occurred_at >= opened.c.opened_at).exists())
    stmt = (sa.select(Customer.id, Customer.ref_hash, opened.c.opened_at, rejected.label("rejected"),
                      ReferralLink.code, ReferralLink.owner_id, Customer.is_employee)
            .join(opened, opened.c.customer_id == Customer.id)
            .outerjoin(ReferralLink, ReferralLink.id == Customer.link_id))
    result = {}
    for row in db.session.execute(stmt):
        result[row.ref_hash] = Ours(row.id, row.ref_hash, row.opened_at, bool(row.rejected), row.code, row.owner_id,
                                    bool(row.is_employee))
    return result


def _why_missing(hashes: list[str]) -> dict[str, str]:
    """For references with no opening here: unknown customer, no account_opened, or one in another period."""
    reasons = dict.fromkeys(hashes, REASON_UNKNOWN)
    for offset in range(0, len(hashes), LOOKUP_CHUNK):
        chunk = hashes[offset:offset + LOOKUP_CHUNK]
        stmt = (sa.select(Customer.ref_hash, sa.func.count(Conversion.id))
                .outerjoin(Conversion, sa.and_(Conversion.customer_id == Customer.id,
                                               Conversion.event == "account_opened"))
                .where(Customer.ref_hash.in_(chunk)).group_by(Customer.ref_hash))
        for ref_hash, openings in db.session.execute(stmt):
            reasons[ref_hash] = REASON_OTHER_PERIOD if openings else REASON_NO_OPENING
    return reasons


def match(parsed: ParsedFile, period_from: date, period_to: date) -> Result:
    """Compare the file's rows of the period with the openings recorded here."""
    result = Result()
    first_line: dict[str, FileRow] = {}
    for row in parsed.rows:
        if not period_from <= row.opened_on <= period_to:
            result.outside_period.append([row.line, row.opened_on.isoformat()])
        elif row.ref_hash in first_line:
            result.duplicates.append([row.line, first_line[row.ref_hash].line])
        else:
            first_line[row.ref_hash] = row
    ours = openings_here(period_from, period_to)
    matched = date_mismatch = 0
    zone = _zone()
    unexplained: list[FileRow] = []
    for ref_hash, row in first_line.items():
        here = ours.get(ref_hash)
        if here is not None and not here.rejected:
            matched += 1
            date_mismatch += here.opened_at.astimezone(zone).date() != row.opened_on
        elif here is not None:
            result.missing_here.append([row.line, ref_hash, row.opened_on.isoformat(), REASON_REJECTED])
        else:
            unexplained.append(row)
    reasons = _why_missing([row.ref_hash for row in unexplained]) if unexplained else {}
    result.missing_here.extend([row.line, row.ref_hash, row.opened_on.isoformat(), reasons[row.ref_hash]]
                               for row in unexplained)
    result.missing_here.sort()
    net_here = [o for o in ours.values() if not o.rejected]
    result.missing_there = sorted(
        ([o.customer_id, o.ref_hash, o.opened_at.isoformat(), o.link_code, o.advisor_id]
         for o in net_here if o.ref_hash not in first_line), key=lambda item: (item[2], item[0]))
    by_reason = {reason: 0 for reason in REASONS}
    for item in result.missing_here:
        by_reason[item[3]] += 1
    amount = sum((row.amount for row in parsed.rows if row.amount is not None), Decimal("0"))
    result.totals = {
        "rows": len(parsed.rows), "in_period": len(first_line) + len(result.duplicates),
        "unique_in_period": len(first_line), "duplicates": len(result.duplicates),
        "outside_period": len(result.outside_period), "matched": matched, "date_mismatch": date_mismatch,
        "missing_here": len(result.missing_here), "missing_here_by_reason": by_reason,
        "missing_there": len(result.missing_there), "opened_here": len(net_here),
        "rejected_here": len(ours) - len(net_here), "employees_here": sum(o.is_employee for o in net_here),
        "file_amount": f"{amount:.2f}" if parsed.has_amount else None,
    }
    return result


# --- the service ----------------------------------------------------------------------------------------


def clean_filename(name: str | None) -> str:
    """The uploaded file's base name, printable, at most 255 characters (shown and used for the download)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:255] or "reconciliation.csv"


def check_period(period_from, period_to) -> None:
    """The period must be ordered and at most a year long."""
    fields = {}
    if not isinstance(period_from, date):
        fields["period_from"] = _("required")
    if not isinstance(period_to, date):
        fields["period_to"] = _("required")
    if not fields and period_to < period_from:
        fields["period_to"] = _("the end is before the start")
    elif not fields and (period_to - period_from).days + 1 > PERIOD_MAX_DAYS:
        fields["period_to"] = _("at most %(n)d days from the start", n=PERIOD_MAX_DAYS)
    if fields:
        raise ValidationError(_("The period cannot be used; nothing was stored."), fields=fields,
                              code="bad_period")


def create_upload(stream, filename: str | None, *, period_from: date, period_to: date, actor) -> ReconciliationUpload:
    """Read, match and keep an account-opening system's CSV: one row, its bytes in storage, one audit entry.

    Refused files (too large, too many rows, wrong encoding, missing columns, bad rows) leave nothing.
    """
    check_period(period_from, period_to)
    max_rows = int(current_app.config.get("RECONCILIATION_MAX_ROWS", 200_000))
    max_bytes = int(current_app.config.get("RECONCILIATION_MAX_MB", 64)) * 1024 * 1024
    spool, _size = _spool(stream, max_bytes)
    with spool:
        parsed = parse_file(spool, max_rows=max_rows)
        result = match(parsed, period_from, period_to)
        spool.seek(0)
        store = storage.get_storage()
        stored = store.put_stream(spool, storage.new_key("reconciliation", ".csv"), "text/csv")
    try:
        upload = ReconciliationUpload(
            period_from=period_from, period_to=period_to, filename=clean_filename(filename),
            storage_key=stored.key, sha256=stored.sha256, size_bytes=stored.size, encoding=parsed.encoding,
            row_count=result.totals["rows"], matched=result.totals["matched"],
            missing_here=result.totals["missing_here"], missing_there=result.totals["missing_there"],
            result={"totals": result.totals, "columns": parsed.columns, "missing_here": result.missing_here,
                    "missing_there": result.missing_there, "outside_period": result.outside_period,
                    "duplicates": result.duplicates},
            uploaded_by_id=actor.id)
        db.session.add(upload)
        db.session.flush()
        audit.record("reconciliation.uploaded", "reconciliation_upload", upload.id, actor=actor,
                     details={"sha256": stored.sha256, "size": stored.size, "encoding": parsed.encoding,
                              "period_from": period_from.isoformat(), "period_to": period_to.isoformat(),
                              "rows": result.totals["rows"], "matched": result.totals["matched"],
                              "missing_here": result.totals["missing_here"],
                              "missing_there": result.totals["missing_there"]})
    except BaseException:
        store.delete_unreferenced(stored.key)
        raise
    return upload


def discard_file(upload: ReconciliationUpload) -> None:
    """Remove the stored bytes of an upload whose row was not committed (the caller's commit failed)."""
    storage.get_storage().delete_unreferenced(upload.storage_key)
