"""PhotoVault Python client."""
