"""The upstream S3 store: client (pool, streaming), signer (re-signing), answers read (responses),
per-store fixes (dialects) and which store has which quirk (quirks)."""
