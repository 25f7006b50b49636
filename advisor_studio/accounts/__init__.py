"""Users, roles, sign-in and admin user management."""
