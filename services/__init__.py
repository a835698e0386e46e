"""Engage services and the platform package they share."""
