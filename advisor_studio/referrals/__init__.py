"""Community groups, referral links, the redirect and its clicks, conversions and their attribution."""
