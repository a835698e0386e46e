"""The platform every Engage service stands on.

Settings, logs, errors, authentication, the gRPC server bootstrap, the
database with its unit of work, and the transactional outbox with its relay
to NATS JetStream. One copy, used by every service.
"""
