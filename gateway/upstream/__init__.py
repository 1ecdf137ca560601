"""The upstream S3 store: client (pool, streaming), signer (re-signing), dialects (quirks)."""
