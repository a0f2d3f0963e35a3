"""Maintenance windows: planned, announced, and shown as such instead of as failures."""
