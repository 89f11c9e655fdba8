"""jwtauth: an OAuth 2.0 authorization server that issues offline-verifiable JWT access tokens."""

__version__ = "0.1.0"
