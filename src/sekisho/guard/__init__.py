"""Protection: named rate limits (and, next, lockout lanes with device cookies)."""
