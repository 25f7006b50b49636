"""Template filters every feature's pages use, worded in the reader's language."""

from __future__ import annotations

from flask import Flask
from flask_babel import format_decimal, ngettext

from advisor_studio import system_reasons

_UNITS = ("kB", "MB", "GB", "TB")


def file_size(value) -> str:
    """A size in bytes for people: "37 字节" / "37 bytes" below 1 kB, then kB, MB, GB (powers of 1000, as
    Jinja's own filesizeformat, whose "Bytes" stayed English on Chinese pages)."""
    size = int(value or 0)
    if size < 1000:
        return ngettext("%(num)d byte", "%(num)d bytes", size)
    amount, unit = size / 1000, 0
    while amount >= 1000 and unit < len(_UNITS) - 1:
        amount, unit = amount / 1000, unit + 1
    return f"{format_decimal(round(amount, 1), format='#,##0.#')} {_UNITS[unit]}"


def init_app(app: Flask) -> None:
    """Register the filters (``filesizeformat`` replaces Jinja's)."""
    from advisor_studio.core import audit_view

    app.add_template_filter(file_size, "filesizeformat")
    app.add_template_filter(system_reasons.label, "system_reason")
    app.add_template_filter(audit_view.actor_label, "actor_label")
