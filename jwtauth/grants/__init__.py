"""Token-endpoint grants: one small handler per grant_type, looked up in a literal registry."""
