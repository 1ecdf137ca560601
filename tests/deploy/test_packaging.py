"""What ``pip install .`` installs: pyproject.toml's requirements match the code's imports, and moto
(the embedded in-memory upstream) comes only with the ``embedded`` extra.

The wheel is built from what the Dockerfile's builder copies (pyproject.toml, README.md, gateway/),
as pip builds it (an isolated build with the build backend pyproject.toml names).
"""
from __future__ import annotations

import ast
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from . import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# imported by tests/ but installed by other means than a requirement of pyproject.toml
INSTALLED_APART = {
    # declares Python >= 3.12 (works on 3.11): the Makefile installs it with --ignore-requires-python
    "helm-sdkpy",
}


def imported_modules(root: Path) -> set[str]:
    """Top-level names of every absolute import under ``root`` (function-level ones included)."""
    names = set()
    for path in root.rglob("*.py"):
        if {".tools", "node_modules"} & set(path.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"gateway", "tests", "__future__"}


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions that provide these modules (canonical names)."""
    providers = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in providers)
    assert not missing, f"imported, but no installed distribution provides them: {missing}"
    return {canonicalize_name(d) for m in modules for d in providers[m]}


def names(requirements) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_runtime_requirements_are_exactly_what_gateway_imports():
    imported, declared = distributions(imported_modules(ROOT / "gateway")), names(PROJECT["dependencies"])
    assert not imported - declared, f"gateway/ imports them, project.dependencies lacks them: {imported - declared}"
    assert not declared - imported, f"declared in project.dependencies, imported nowhere: {declared - imported}"


def test_test_extra_covers_what_the_tests_import():
    extras = PROJECT["optional-dependencies"]
    declared = names(PROJECT["dependencies"]) | names(extras["test"]) | INSTALLED_APART
    assert "r2-gateway[embedded]" in extras["test"], "the tests start the embedded upstream (moto)"
    declared |= names(extras["embedded"])
    undeclared = distributions(imported_modules(ROOT / "tests")) - declared
    assert not undeclared, f"tests import these, pyproject.toml's test extra does not declare them: {undeclared}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "gateway", src / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out),
                        str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (built,) = out.glob("r2_gateway-*.whl")
    return built


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(z.read(name).decode())


def _required(metadata, extra: str) -> set[str]:
    """The distributions ``pip install 'r2-gateway[extra]'`` asks for ("" = no extra), this machine."""
    out = set()
    for line in metadata.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": extra}):
            out.add(canonicalize_name(req.name))
    return out


def test_wheel_metadata_keeps_moto_in_the_embedded_extra(wheel):
    meta = _metadata(wheel)
    production = _required(meta, "")
    assert "moto" not in production
    # aiobotocore: the AWS credential chain for stores configured without keys (upstream/credentials.py)
    assert {"aiohttp", "httptools", "multidict", "yarl", "aiobotocore"} <= production
    assert _required(meta, "embedded") - production == {"moto"}
    assert "moto" in _required(meta, "test") or "r2-gateway" in _required(meta, "test")
    assert set(meta.get_all("Provides-Extra")) >= {"embedded", "test"}
    # PEP 639: the license as an SPDX expression (a TOML table is deprecated and warns on every build)
    assert meta["License-Expression"] == "Apache-2.0"


def _resolve(spec: str, report: Path) -> set[str]:
    """What pip would install for ``spec`` into an empty environment (resolved, nothing installed)."""
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                        "--report", str(report), spec], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return {canonicalize_name(i["metadata"]["name"]) for i in json.loads(report.read_text())["install"]}


@pytest.mark.slow
def test_pip_install_pulls_no_moto_and_the_embedded_extra_does(wheel, tmp_path):
    production = _resolve(str(wheel), tmp_path / "production.json")
    assert "r2-gateway" in production and "aiohttp" in production
    assert not production & {"moto", "boto3", "werkzeug", "flask"}, production
    embedded = _resolve(f"{wheel}[embedded]", tmp_path / "embedded.json")
    assert {"moto", "werkzeug", "flask"} <= embedded, embedded
