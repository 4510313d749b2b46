"""Tenants and credentials: workspaces, management tokens, secret storage."""
