"""The auth event log: what happened, to whom, from where, under which reference."""
