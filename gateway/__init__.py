"""Engage gateway: the HTTP/JSON API and the web app in front of the gRPC services.

It keeps no data of its own: every read and change goes to a service over gRPC
with the caller's own token, so each change records who made it.
"""
