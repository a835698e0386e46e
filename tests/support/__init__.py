"""Helpers the tests share: real NATS servers, real databases, signed tokens."""
