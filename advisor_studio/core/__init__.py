"""Cross-cutting pages: landing dashboard, language switch, health, audit log, file downloads."""
