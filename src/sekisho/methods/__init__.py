"""Login methods (password now; one-time codes later), each behind one narrow interface."""
