"""Service health and the member-facing status page."""
