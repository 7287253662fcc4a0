"""PhotoVault service: core, adapters and transports."""
