"""The password method: which new passwords are accepted (``policy``) and how they are hashed."""
