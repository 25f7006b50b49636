"""Pages of the studio feature."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("studio", __name__)
