"""One-time codes and links (email verification, recovery, later phone and second factors)."""
