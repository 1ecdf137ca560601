"""The clients installed are the pinned ones (install-clients.sh, js/package.json): a stale
node_modules or aws-cli virtualenv would otherwise test some other version silently."""
from __future__ import annotations

import json
import re

from .conftest import AWS, HERE, JS, client_env, require, run


def test_awscli_is_the_pinned_version(tmp_path):
    pinned = re.search(r"^AWSCLI_VERSION=(\S+)$", (HERE / "install-clients.sh").read_text(), re.M).group(1)
    out = run([require(AWS), "--version"], client_env(tmp_path)).stdout
    assert out.startswith(f"aws-cli/{pinned} "), out


def test_js_clients_are_the_pinned_versions(tmp_path):
    node = require("node")
    major = int(run([node, "-p", "process.versions.node.split('.')[0]"], client_env(tmp_path)).stdout)
    assert major >= 20
    wanted = json.loads((JS / "package.json").read_text())["dependencies"]
    lock = json.loads((JS / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned exactly: {version}"
        assert lock[f"node_modules/{name}"]["version"] == version, f"package-lock.json is stale for {name}"
        installed = JS / "node_modules" / name / "package.json"
        assert installed.is_file(), "run `bash tests/clients/install-clients.sh`"
        assert json.loads(installed.read_text())["version"] == version, name
