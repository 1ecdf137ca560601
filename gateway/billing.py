"""R2 billing preview: every answered request counted by bucket and R2 pricing class (Class A,
Class B), as ``r2gw_r2_operations_total{bucket, class}`` — what the same traffic would be billed
as on R2. The classification is data (``data/r2-pricing.yaml``). On when ``billing_metrics`` is set.

Every request of a classified operation counts, whatever its status (an upper bound: R2 may not
bill some failed requests). Buckets are client-chosen names: past ``max_buckets`` distinct ones,
the rest count under ``bucket="(other)"``, so the series stay bounded.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from prometheus_client.core import CounterMetricFamily

from .operations import OPERATIONS

PRICING_PATH = Path(__file__).resolve().parent / "data" / "r2-pricing.yaml"
_CLASSES = {"class_a": "A", "class_b": "B", "free": None}


def load_classes(path: Path = PRICING_PATH) -> dict[str, str]:
    """Operation → "A" / "B" (free operations are left out). Raises ValueError on a bad file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) - set(_CLASSES):
        raise ValueError(f"{path}: expected the keys {sorted(_CLASSES)}")
    out: dict[str, str] = {}
    seen: set[str] = set()
    for section, cls in _CLASSES.items():
        for op in data.get(section) or ():
            if op not in OPERATIONS:
                raise ValueError(f"{path}: {section}: unknown operation {op!r}")
            if op in seen:
                raise ValueError(f"{path}: {op} is listed twice")
            seen.add(op)
            if cls is not None:
                out[op] = cls
    return out


class Billing:
    __slots__ = ("classes", "counts", "max_buckets", "_buckets")

    def __init__(self, classes: dict[str, str], max_buckets: int = 1000) -> None:
        self.classes = classes
        self.counts: dict[tuple[str, str], int] = {}
        self.max_buckets = max_buckets
        self._buckets: set[str] = set()

    def count(self, operation: str, bucket: str | None) -> None:
        cls = self.classes.get(operation)
        if cls is None:
            return
        b = bucket or ""
        if b not in self._buckets:
            if len(self._buckets) >= self.max_buckets:
                b = "(other)"
            else:
                self._buckets.add(b)
        key = (b, cls)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    # prometheus_client collector
    def describe(self):
        return []

    def collect(self):
        fam = CounterMetricFamily("r2gw_r2_operations", "Requests by bucket and R2 pricing class (Class A / "
                                  "Class B): what the same traffic would be billed as on R2.",
                                  labels=["bucket", "class"])
        for (bucket, cls), n in sorted(self.counts.items()):
            fam.add_metric([bucket, cls], n)
        yield fam
