"""Integrity of stored files: verified streaming, signed links, download log, alerts, re-verification."""
