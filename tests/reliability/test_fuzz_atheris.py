"""CI's short run of the coverage-guided fuzzers (tests/fuzz): each harness a few seconds, no
finding allowed. The number of cases each ran is printed (``-s``) and recorded as a property in
pytest's JUnit XML. Longer runs: ``python -m tests.fuzz.run --seconds 600``."""
from __future__ import annotations

import os

import pytest

SECONDS = int(os.environ.get("R2GW_FUZZ_SECONDS", "4"))


def test_atheris_harnesses(tmp_path, record_property, capsys):
    try:  # declared in the test extra: a missing atheris fails this test, it is never skipped
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail("atheris is not installed: pip install -e '.[test]' (atheris==3.0.0)")
    from tests.fuzz.run import NAMES, run_all
    results = run_all(NAMES, SECONDS, tmp_path)
    with capsys.disabled():
        print()
        for r in results:
            print(f"  fuzz {r.name:<14} {r.runs:>9} cases in {r.seconds}s, coverage {r.coverage}, corpus {r.corpus}")
    for r in results:
        record_property(f"fuzz_cases_{r.name}", r.runs)
    findings = {r.name: r.finding for r in results if r.finding}
    assert not findings, "\n\n".join(f"{n}:\n{f}" for n, f in findings.items())
    assert all(r.runs > 100 for r in results), [(r.name, r.runs) for r in results]
