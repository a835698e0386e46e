"""gRPC servicers of the skills service."""
