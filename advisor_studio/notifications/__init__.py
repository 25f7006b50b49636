"""In-app notifications (a bell with an unread count) and optional e-mail about them."""
