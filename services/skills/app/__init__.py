"""Use cases of the skills service: one transaction each."""
