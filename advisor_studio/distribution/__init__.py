"""MCN partners, their channels, assignments and the partner API."""
