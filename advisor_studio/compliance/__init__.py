"""Compliance checks for advisor content: lexicon scanning and rule-based findings."""
