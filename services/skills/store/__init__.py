"""Tables and migrations of the skills service."""
