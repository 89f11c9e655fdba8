"""OpenID Connect provider: id_tokens, userinfo, standard claims (OpenID Connect Core 1.0)."""
