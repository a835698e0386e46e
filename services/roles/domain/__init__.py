"""Pure rules of the roles service: no I/O, no protobuf."""
