"""Self-service flows: registration and verification, login, recovery.

Each flow service is called by both its JSON route and its HTML page.
"""
