"""The compatibility rules as a pipeline stage: enforce (refuse), audit (log and count), or off."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..observability import log
from ..report.detect import Observers
from .enforce import check
from .profile import Profile

if TYPE_CHECKING:
    from ..observability import Metrics
    from ..proxy import Exchange


class Rules:
    def __init__(self, profile: Profile, mode: str, metrics: "Metrics") -> None:
        self.profile = profile
        self.mode = mode
        self._rejected = metrics.rejected
        # what the provider would do differently with what passes (reported, never refused)
        self.observers = Observers.for_profile(profile) if mode != "off" else None

    def apply(self, ex: "Exchange") -> None:
        """The request's operation, headers, query and key against the profile; then what the
        provider would do differently with it (readiness findings, gateway/report/detect.py)."""
        if self.mode == "off":
            return
        self.report(ex, check(self.profile, ex.op, ex.headers, ex.query, ex.bucket, ex.key))
        if self.observers is not None:
            self.observers.observe(ex)

    def report(self, ex: "Exchange", violations: list) -> None:
        """Violations found (by ``apply``, or by a handler in a request body: form fields, XML
        elements), in this mode: enforce raises the first, audit counts and logs, off ignores."""
        if self.mode == "off" or not violations:
            return
        for v in violations:
            self._rejected.labels(ex.op, v.name, self.mode).inc()  # bounded: never the client's value
            ex.features.append(v.feature)
        if self.mode == "enforce":
            raise violations[0].error
        log.warning("r2_unsupported_feature", request_id=ex.request_id, operation=ex.op,
                    features=[v.feature for v in violations], profile=self.profile.name)
