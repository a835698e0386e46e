"""Pure rules of the skills service: no I/O."""
