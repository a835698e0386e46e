"""`make bench`: performance figures of the roles service against a bare gRPC echo baseline."""
