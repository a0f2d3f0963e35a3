"""Server-side sessions: opaque tokens, stored hashed, with idle and absolute timeouts."""
