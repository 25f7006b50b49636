"""Funnels, rankings, AARRR, fraud flags, reconciliation and post metrics over the referral data."""
