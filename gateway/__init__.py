"""r2-gateway: Cloudflare R2's S3 dialect in front of any S3 store.

A request's path, one module per stage: addressing → auth → operations → auth.keys (permission)
→ rules → extensions → upstream → proxy (response). See proxy.handle.
"""
__version__ = "0.1.0"
