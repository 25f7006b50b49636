"""Advisor side: scripts, revisions, packages and uploads."""
