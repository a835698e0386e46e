"""gRPC servicers: protobuf in, use case, protobuf out."""
