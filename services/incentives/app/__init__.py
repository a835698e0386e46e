"""Use cases: one transaction each, rules applied, events emitted."""
