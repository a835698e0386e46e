"""gRPC servicers and the permission of every RPC."""
