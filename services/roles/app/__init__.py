"""Use cases: one transaction each, domain rules applied, events emitted."""
