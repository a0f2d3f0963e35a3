"""Notifications: written to the outbox with the change that causes them, delivered later."""
