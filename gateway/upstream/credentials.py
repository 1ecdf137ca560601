"""Credentials for a store configured without keys: botocore's provider chain, through aiobotocore —
the environment, the shared config and credentials files (``aws_profile``, or ``AWS_PROFILE``),
web identity (IRSA: ``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``), the container endpoint
(EKS Pod Identity, ECS: ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` / ``_RELATIVE_URI``) and instance
metadata, in the order and with the rules of every AWS SDK.

They feed the gateway's own signer (gateway/upstream/signer.py); a session token goes upstream as
``X-Amz-Security-Token``. Temporary credentials are refreshed before they expire: botocore renews
them in its advisory window (15 minutes before expiry, 10 for a mandatory refresh), and a small
task asks it every :data:`POLL_SECONDS`, so no request waits for a refresh or is signed with an
expired key. A failed refresh keeps the current credentials and is logged (without secrets).
"""
from __future__ import annotations

import asyncio

POLL_SECONDS = 5.0


def _log():
    # the logging stack (structlog, and rich through it) is loaded by the processes that log here
    # (the gateway has it already); a bulk copy with keyed stores starts without it
    from ..observability import log
    return log


class CredentialsUnavailable(RuntimeError):
    """A store without keys for which the AWS credential chain found nothing."""


class ChainCredentials:
    """The AWS chain's credentials for one store, kept current in a signer."""

    def __init__(self, store: str, profile: str | None = None) -> None:
        self.store = store
        self.profile = profile
        self._creds = None
        self._task: asyncio.Task | None = None
        self.method: str | None = None   # which provider answered: env, assume-role-with-web-identity, …

    async def start(self, signer) -> None:
        """Resolve the chain once (raising CredentialsUnavailable), then keep ``signer`` current."""
        from aiobotocore.session import AioSession
        try:
            creds = await AioSession(profile=self.profile).get_credentials()
        except Exception as e:   # a profile that does not exist, a provider that failed outright
            raise CredentialsUnavailable(
                f"store {self.store!r}: the AWS credential chain failed: {type(e).__name__}: {e}") from None
        if creds is None:
            raise CredentialsUnavailable(
                f"store {self.store!r} has no access_key_id/secret_access_key and the AWS credential chain "
                "found none (environment, shared config/profile, web identity, container or instance metadata)")
        self._creds = creds
        self.method = getattr(creds, "method", None)
        await self.refresh(signer)
        _log().info("upstream_credentials", store=self.store, method=self.method, access_key_id=signer.access_key_id)
        self._task = asyncio.get_running_loop().create_task(self._keep_current(signer))

    async def refresh(self, signer) -> bool:
        """Ask the chain for its current credentials (botocore refreshes them when due); True if
        they changed."""
        frozen = await self._creds.get_frozen_credentials()
        current = (signer.access_key_id, signer.has_secret(frozen.secret_key), signer.session_token)
        if current == (frozen.access_key, True, frozen.token or None):
            return False
        signer.set_credentials(frozen.access_key, frozen.secret_key, frozen.token)
        return True

    async def _keep_current(self, signer) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if await self.refresh(signer):
                    _log().info("upstream_credentials_refreshed", store=self.store, method=self.method,
                                access_key_id=signer.access_key_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                _log().warning("upstream_credentials_refresh_failed", store=self.store, error=type(e).__name__)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
