"""The Grafana dashboard (deploy/grafana/) and the Prometheus alert rules (deploy/prometheus/) use
only metrics the gateway really exports: two gateways are started (one in front of the embedded
upstream, in audit mode with the billing preview on; one whose upstream is down), traffic is driven
through them, and every metric name of every expression (parsed as PromQL by promql-parser) must be
among the samples of their /metrics. The rules are validated and unit-tested by Prometheus's own
promtool (Debian's ``prometheus`` package, installed by tests/upstreams/install-system-deps.sh)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import promql_parser
import pytest
import yaml
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_process import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "r2-gateway.json"
RULES = ROOT / "deploy" / "prometheus" / "r2-gateway-alerts.yaml"
RULE_TESTS = Path(__file__).with_name("prometheus-alerts.test.yaml")
# Grafana's variables, as a query sent to Prometheus would have them
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h", "$job": ".*",
                     "$instance": ".*", "${datasource}": "prometheus"}


def _scrape(endpoint: str) -> set[str]:
    with urllib.request.urlopen(endpoint + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """The sample names of two real gateways' /metrics, after traffic of every kind."""
    healthy = GatewayProcess(tmp_path_factory.mktemp("gw-dash"), tls=False, name="gateway-dash",
                             env={"R2GW_MODE": "audit", "R2GW_BILLING_METRICS": "true"})
    dead = GatewayProcess(tmp_path_factory.mktemp("gw-dead"), tls=False, name="gateway-dead",
                          upstream=type("Up", (), {"endpoint": f"http://127.0.0.1:{free_port()}", "access_key": "x",
                                                   "secret_key": "y", "region": "us-east-1"})())
    healthy.start(timeout=60)
    dead.start()
    try:
        s3 = healthy.client()
        s3.create_bucket(Bucket="dash")
        s3.put_object(Bucket="dash", Key="k", Body=b"x" * 2048, ACL="public-read")   # audit: counted, let through
        s3.get_object(Bucket="dash", Key="k")["Body"].read()
        s3.head_object(Bucket="dash", Key="k")
        s3.list_objects_v2(Bucket="dash")
        with pytest.raises(ClientError):
            healthy.client(secret_key="not-the-secret-0123456789").list_buckets()   # an auth failure
        with pytest.raises(ClientError):
            dead.client().head_bucket(Bucket="dash")                               # upstream unreachable
        names = _scrape(healthy.endpoint) | _scrape(dead.endpoint)
    finally:
        healthy.stop()
        dead.stop()
    return names


def _names(expr: str) -> set[str]:
    """Every metric name a PromQL expression selects (promql-parser's AST)."""
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    found: set[str] = set()

    def visit(node, *_):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.add(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    found.add(m.value)
        return True
    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", ())]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.+), *\w+\)", var["definition"])
            assert m, var["definition"]
            out.append((f"variable {var['name']}", m.group(1)))
    return out


def _rule_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in rules["groups"] for r in g["rules"]]


def test_the_walker_finds_names_where_they_hide():
    assert _names('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x=~"$job"}[$__rate_interval])))') == {"a_bucket"}
    assert _names('sum(rate(b[5m])) / on(job) group_left max({__name__="c"}) and d offset 5m') == {"b", "c", "d"}


def test_every_dashboard_expression_uses_exported_metrics(exported):
    assert {"r2gw_requests_total", "r2gw_upstream_errors_total", "r2gw_r2_operations_total"} <= exported
    used = {(title, name) for title, expr in _dashboard_exprs() for name in _names(expr)}
    assert len({name for _, name in used}) >= 12    # the walker saw the expressions' selectors
    missing = {(title, name) for title, name in used if name not in exported}
    assert not missing, f"dashboard panels use metrics the gateway does not export: {sorted(missing)}"


def test_every_alert_expression_uses_exported_metrics(exported):
    exprs = _rule_exprs()
    assert {a for a, _ in exprs} >= {"R2GatewayUpstreamDown", "R2GatewayHighErrorRatio", "R2GatewayHighLatency"}
    missing = {(alert, name) for alert, expr in exprs for name in _names(expr) if name not in exported}
    assert not missing, f"alert rules use metrics the gateway does not export: {sorted(missing)}"


def test_the_dashboard_is_a_well_formed_grafana_dashboard():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "r2-gateway" and dash["schemaVersion"] >= 30
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    titles = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        titles.add(p["title"])
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        for t in p["targets"]:
            promql_parser.parse(_substitute(t["expr"]))
    for wanted in ("Requests by operation", "Responses by status", "Request latency percentiles", "Body bytes / s",
                   "Upstream errors by reason (and store)", "Upstream latency (to response headers)",
                   "Requests R2 would refuse, by feature"):
        assert wanted in titles


def _substitute(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run `bash tests/upstreams/install-system-deps.sh` "
                    "(Debian's prometheus package)", pytrace=False)
    return found


def test_the_rules_pass_promtool_check():
    r = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_rule_exprs())} rules found" in r.stdout


def test_the_alerts_fire_as_their_unit_tests_say():
    r = subprocess.run([_promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
