"""jwtauth.verify.resource: RFC 9728 protected-resource metadata, its path and its URL."""

from __future__ import annotations

import json

import pytest

from jwtauth.verify import ProtectedResource

ISSUER = "https://auth.example.com"


@pytest.mark.parametrize(
    ("resource", "path", "url"),
    [
        ("https://api.example.com", "/.well-known/oauth-protected-resource",
         "https://api.example.com/.well-known/oauth-protected-resource"),
        ("https://api.example.com/", "/.well-known/oauth-protected-resource",
         "https://api.example.com/.well-known/oauth-protected-resource"),
        ("http://127.0.0.1:8765/mcp", "/.well-known/oauth-protected-resource/mcp",
         "http://127.0.0.1:8765/.well-known/oauth-protected-resource/mcp"),
        ("https://a.example/v1/api/", "/.well-known/oauth-protected-resource/v1/api/",
         "https://a.example/.well-known/oauth-protected-resource/v1/api/"),
    ],
)
def test_the_well_known_path_is_inserted_before_the_resource_path(resource: str, path: str, url: str) -> None:
    """RFC 9728 §3.1: host, then the well-known suffix, then the resource's own path."""
    meta = ProtectedResource.of(resource, ISSUER)
    assert (meta.path, meta.url) == (path, url)


def test_the_document_names_resource_servers_scopes_and_methods() -> None:
    meta = ProtectedResource.of("https://api.example.com", [ISSUER], ["read", "write"], resource_name="API")
    assert json.loads(meta.body()) == {
        "resource": "https://api.example.com",
        "authorization_servers": [ISSUER],
        "scopes_supported": ["read", "write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "API",
    }


@pytest.mark.parametrize(
    "resource",
    [
        "api.example.com",
        "ftp://api.example.com",
        "https://api.example.com/#x",
        "https://api.example.com/?tenant=1",
        'https://api.example.com/"',
        "https://api.example.com/ x",
        "https://",
    ],
)
def test_unusable_resource_identifiers_are_refused(resource: str) -> None:
    with pytest.raises(ValueError, match="resource"):
        ProtectedResource.of(resource, ISSUER)


def test_an_authorization_server_is_required_and_checked() -> None:
    with pytest.raises(ValueError, match="authorization server"):
        ProtectedResource.of("https://api.example.com", [])
    with pytest.raises(ValueError, match="authorization server"):
        ProtectedResource.of("https://api.example.com", ["javascript:alert(1)"])
