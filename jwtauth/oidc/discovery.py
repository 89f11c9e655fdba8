"""OpenID Connect Discovery 1.0 §3 metadata: what this provider implements, nothing more.

Merged into the RFC 8414 document, so `/.well-known/openid-configuration` and
`/.well-known/oauth-authorization-server` serve one consistent set of facts.
"""

from __future__ import annotations

from typing import Any

from jwtauth.config.settings import Settings
from jwtauth.oidc import claims, responses
from jwtauth.oidc.prompt import PROMPTS
from jwtauth.resources import paths

# Core §3.1.2.1: what a relying party may always ask for, whatever the clients registered.
OIDC_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access")


def oidc_metadata(settings: Settings, scopes: list[str]) -> dict[str, Any]:
    """Return the Discovery §3 members this provider supports, over the RFC 8414 ones."""
    issuer = settings.issuer
    offered = sorted({*scopes, "openid"})
    return {
        "userinfo_endpoint": issuer + paths.USERINFO,
        "end_session_endpoint": issuer + paths.LOGOUT,  # RP-Initiated Logout §2.1
        "scopes_supported": offered,
        "response_modes_supported": list(responses.MODES),  # and the Form Post Response Mode
        # Core §8: pairwise subjects once the server has their salt ([oidc] pairwise_salt).
        "subject_types_supported": ["public", "pairwise"] if settings.pairwise_salt else ["public"],
        "id_token_signing_alg_values_supported": [settings.signing_algorithm],
        "userinfo_signing_alg_values_supported": [],  # userinfo answers plain JSON (Core §5.3.2)
        "claims_supported": claims.supported(offered),
        "claim_types_supported": ["normal"],
        # Core §5.5 and §6: the claims and request parameters are not supported; a request
        # object gets request_not_supported, the claims parameter is ignored.
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "frontchannel_logout_supported": False,
        # Back-Channel Logout §2.1: logout tokens carry sid (and sub) for every session.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "prompt_values_supported": list(PROMPTS),  # Core §3.1.2.1, with a browser session (SSO)
    }
