"""The atheris (libFuzzer) driver shared by the ``fuzz_*.py`` harnesses.

``python tests/fuzz/fuzz_sigv4.py -max_total_time=60 [corpus_dir]`` runs one harness with any
libFuzzer flags; ``python -m tests.fuzz.run --seconds 60`` runs them all with a time budget each
and reports how many cases ran. A finding (any exception but S3Error, or a broken invariant) stops
the run and leaves ``crash-*`` with the input that triggers it (replay: pass that file instead of
a corpus directory).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(name: str) -> None:
    import atheris

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["gateway", "tests.fuzz.targets"]):
        from tests.fuzz import targets
    target = targets.TARGETS[name]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
