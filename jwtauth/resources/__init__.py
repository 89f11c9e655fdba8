"""Falcon resources: thin, each one straight path from request to response."""
