"""Test helpers: databases, the mailbox, factories."""
