"""Run every atheris harness with a time budget and report how many fuzz cases each ran.

    python -m tests.fuzz.run --seconds 60                 # all harnesses, 60 s each
    python -m tests.fuzz.run --seconds 600 sigv4 chunked  # some, longer
    python -m tests.fuzz.run --corpus fuzz-corpus ...     # keep (and grow) the corpora between runs

Seeds (valid documents, valid encodings) and dictionaries (XML tokens) are generated here, so the
repository carries no binary corpus. Exit status 1 when a harness found something; the input
that triggers it is kept (``crash-*`` under the work directory) and its path printed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NAMES = ("addressing", "sigv4", "chunked", "body_verifier", "xml")

XML_DICT = ["<Delete>", "</Delete>", "<Object>", "</Object>", "<Key>", "</Key>", "<Quiet>true</Quiet>",
            "<CompleteMultipartUpload>", "<Part>", "<PartNumber>", "</PartNumber>", "<ETag>",
            "<CreateBucketConfiguration>", "<LocationConstraint>", "<CORSConfiguration>", "<CORSRule>",
            "<LifecycleConfiguration>", "<Rule>", "<Status>Enabled</Status>", "<RestoreRequest>",
            '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="UTF-16"?>',
            "<!DOCTYPE", "<!ENTITY", "&amp;", "&lt;", "&#x0;", "&#65;", "<![CDATA[", "]]>", "<!--", "-->",
            ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', "<?pi x?>", "\xef\xbb\xbf"]


def _seeds(name: str) -> list[bytes]:
    sys.path.insert(0, str(ROOT))
    from tests.fuzz import targets
    rnd = __import__("random").Random(1)
    blobs = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in (8, 64, 200, 400)]
    if name == "xml":
        docs = [
            b'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>',
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part>"
            b"</CompleteMultipartUpload>",
            b"<CreateBucketConfiguration><LocationConstraint>auto</LocationConstraint></CreateBucketConfiguration>",
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
            b'<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><Status>Enabled'
            b"</Status></Rule></LifecycleConfiguration>",
            '<?xml version="1.0" encoding="UTF-16"?><Delete><Object><Key>\u00e9</Key></Object></Delete>'.encode("utf-16"),
        ]
        return [bytes([i]) + d for i, d in enumerate(docs)] + blobs
    if name == "chunked":
        auth = targets.AUTHS[targets.MODES[0]]
        return [b"\x00\x00\x00\x00" + targets.encode_chunked(b"hello world" * 5, 7, auth)] + blobs
    return blobs


@dataclass
class Result:
    name: str
    seconds: int
    runs: int
    coverage: int
    corpus: int
    finding: str | None


def run_one(name: str, seconds: int, workdir: Path, corpus_root: Path | None = None) -> Result:
    corpus = (corpus_root or workdir / "corpus") / name
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for i, seed in enumerate(_seeds(name)):
            (corpus / f"seed-{i}").write_bytes(seed)
    artifacts = workdir / "artifacts" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, str(HERE / f"fuzz_{name}.py"), str(corpus), f"-max_total_time={seconds}",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}/", "-max_len=4096", "-timeout=10",
            "-rss_limit_mb=2048"]
    if name == "xml":
        dict_path = workdir / "xml.dict"
        dict_path.write_text("".join(
            '"' + "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else f"\\x{ord(c):02x}" for c in tok) + '"\n'
            for tok in XML_DICT))
        args.append(f"-dict={dict_path}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=seconds + 120)
    log = proc.stdout + proc.stderr
    runs = int((re.findall(r"stat::number_of_executed_units:\s*(\d+)", log) or
                re.findall(r"Done (\d+) runs", log) or ["0"])[-1])
    cov = int((re.findall(r"cov: (\d+)", log) or ["0"])[-1])
    corp = len(list(corpus.iterdir()))
    finding = None
    if proc.returncode != 0:
        crashes = sorted(artifacts.glob("*"))
        tail = "\n".join(log.splitlines()[-40:])
        finding = f"exit {proc.returncode}; input: {crashes[-1] if crashes else '?'}\n{tail}"
    return Result(name, seconds, runs, cov, corp, finding)


def run_all(names=NAMES, seconds: int = 60, workdir: Path | None = None,
            corpus_root: Path | None = None) -> list[Result]:
    """Run the harnesses one after the other; artifacts (and, by default, corpora) go to
    ``workdir`` (a new temporary directory when not given, kept so that findings can be replayed)."""
    base = workdir or Path(tempfile.mkdtemp(prefix="r2gw-fuzz-"))
    return [run_one(n, seconds, base, corpus_root) for n in names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"harnesses to run (default: all of {', '.join(NAMES)})")
    ap.add_argument("--seconds", type=int, default=60, help="time budget per harness")
    ap.add_argument("--corpus", type=Path, default=None, help="keep corpora here (one folder per harness)")
    ap.add_argument("--workdir", type=Path, default=None, help="where artifacts go (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        ap.error(f"unknown harness: {', '.join(unknown)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="r2gw-fuzz-"))
    results = run_all(args.names or NAMES, args.seconds, workdir, args.corpus)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(f"{'harness':<14}{'seconds':>8}{'cases':>12}{'coverage':>10}{'corpus':>8}  result")
        for r in results:
            print(f"{r.name:<14}{r.seconds:>8}{r.runs:>12}{r.coverage:>10}{r.corpus:>8}  "
                  f"{'FINDING' if r.finding else 'ok'}")
        print(f"total cases: {sum(r.runs for r in results)}  (work directory: {workdir})")
    for r in results:
        if r.finding:
            print(f"\n--- {r.name} ---\n{r.finding}", file=sys.stderr)
    return 1 if any(r.finding for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
