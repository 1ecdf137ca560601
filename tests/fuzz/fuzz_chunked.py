"""Coverage-guided fuzzing of the gateway's chunked parser (see tests/fuzz/harness.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.harness import main  # noqa: E402

if __name__ == "__main__":
    main("chunked")
