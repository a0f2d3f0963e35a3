"""Members, their identifiers (email, member ID, card, phone) and how input finds them."""
