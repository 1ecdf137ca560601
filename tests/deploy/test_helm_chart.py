"""The Helm chart (helm/r2-gateway), linted and rendered by real Helm (helm-sdkpy: Helm v4's library).

Rendering is a real ``helm install`` into a loopback fake API server (see tests/deploy/__init__.py):
values coalescing, values.schema.json, every template and NOTES.txt are Helm's own work.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import helm_sdkpy  # noqa: F401  -- a hard requirement: without it these tests fail, never skip
import jsonschema
import pytest
import yaml

from . import (CHART, HelmRenderError, Rendered, check_env_name, check_gateway_container, find_container,
               helm_lint, helm_render, k8s_validate, load_with_gateway, pod_spec)

UPSTREAM = {
    "config": {"upstream": {"endpoint": "http://rook-ceph-rgw-objects.rook-ceph.svc:80"}},
    "upstreamCredentials": {"accessKeyId": "UPSTREAMKEY", "secretAccessKey": "upstream-secret"},
    "clientKeys": [
        {"accessKeyId": "app-writer", "secretAccessKey": "writer-secret", "permission": "object-read-write",
         "buckets": ["uploads", "thumbnails"]},
        {"accessKeyId": "ops", "secretAccessKey": "ops-secret", "permission": "admin-read-only"},
    ],
}

SCENARIOS = {
    "defaults": {},
    "upstream": UPSTREAM,
    "existing-secret": {
        "config": {"upstream": {"endpoint": "https://s3.eu-central-1.amazonaws.com", "dialect": "aws",
                                "region": "eu-central-1"}},
        "existingSecret": "my-r2-gateway-credentials",
        "clientKeys": [{"accessKeyId": "app", "permission": "object-read-only", "buckets": ["public"]}],
        "replicaCount": 3,
    },
    "hpa-servicemonitor": {
        **UPSTREAM,
        "config": {"upstream": UPSTREAM["config"]["upstream"], "metrics": {"listen": "0.0.0.0:9090"},
                   "drain_timeout": 60, "workers": 2, "mode": "audit"},
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
    },
    "tls": {**UPSTREAM, "tls": {"secretName": "r2-gateway-tls"}},
    "stores": {
        **UPSTREAM,
        "config": {"upstream": UPSTREAM["config"]["upstream"],
                   "upstreams": {"archive": {"endpoint": "https://s3.eu-central-1.amazonaws.com",
                                             "region": "eu-central-1", "dialect": "aws"},
                                 "ceph-b": {"endpoint": "http://rgw-b.storage.svc:7480", "dialect": "ceph"}},
                   "buckets": [{"match": "legacy-*", "upstream": "archive"},
                               {"match": "media", "migrate_from": {"upstream": "archive", "bucket": "media-2019",
                                                                   "list": "merged"}},
                               {"match": "b-*", "upstream": "ceph-b"}],
                   "migrate_on_read": {"queue": 64, "concurrency": 2}},
        "storeCredentials": {"ceph-b": {"accessKeyId": "CEPHBKEY", "secretAccessKey": "b-store-s3cr3t-value"}},
        "serviceAccount": {"irsaRoleArn": "arn:aws:iam::123456789012:role/r2-gateway-archive"},
    },
}


def render(values: dict | None = None, **kw) -> Rendered:
    return helm_render(CHART, values, **kw)


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def scenario(request) -> tuple[str, Rendered]:
    return request.param, render(SCENARIOS[request.param])


def _by_name(r: Rendered, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in r.of_kind(kind)}


def _wiring(name: str, r: Rendered):
    deployment = r.one("Deployment")
    spec = pod_spec(deployment)
    container = find_container(spec, "r2-gateway")
    existing = {}
    values = SCENARIOS[name]
    if values.get("existingSecret"):
        existing[values["existingSecret"]] = {"upstream-access-key-id", "upstream-secret-access-key"} | {
            k.get("secretKey", f"client-{k['accessKeyId']}") for k in values.get("clientKeys", [])}
    if values.get("tls", {}).get("secretName"):
        existing[values["tls"]["secretName"]] = {"tls.crt", "tls.key"}
    return check_gateway_container(spec, container, _by_name(r, "ConfigMap"), _by_name(r, "Secret"),
                                   placeholder_secrets=existing), deployment, spec, container


# --- lint ---------------------------------------------------------------------------------------------

def test_lint_passes_with_no_warnings():
    result = helm_lint()
    assert result["TotalChartsLinted"] == 1
    assert not result["Errors"], result
    # severities: 1 info (e.g. "icon is recommended"), 2 warning, 3 error
    assert all(m["Severity"] < 2 for m in result["Messages"]), result["Messages"]


def test_lint_is_real(tmp_path):
    """The same Lint call reports an error for a broken template (so a clean lint means something)."""
    broken = tmp_path / "r2-gateway"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ .Values.config.listen | nosuchfunction }}\n")
    result = helm_lint(broken)
    assert result["Errors"] and any(m["Severity"] == 3 for m in result["Messages"])


# --- every scenario -----------------------------------------------------------------------------------

def test_renders_valid_kubernetes_objects(scenario):
    name, r = scenario
    k8s_validate(r.objects)
    kinds = sorted(o["kind"] for o in r.objects)
    assert {"ConfigMap", "Deployment", "Service", "ServiceAccount"} <= set(kinds), kinds
    # Helm sent each object to the API as rendered
    assert sorted(o["kind"] for o in r.created) == kinds


def test_gateway_container_wiring(scenario):
    name, r = scenario
    _wiring(name, r)


def test_rendered_config_passes_the_gateway_loader(scenario, tmp_path):
    name, r = scenario
    wiring, *_ = _wiring(name, r)
    settings = load_with_gateway(wiring, tmp_path)
    values = SCENARIOS[name]
    endpoint = values.get("config", {}).get("upstream", {}).get("endpoint")
    assert settings.upstream.endpoint == (endpoint.rstrip("/") if endpoint else None)
    if endpoint:
        assert settings.upstream.access_key_id and settings.upstream.secret_access_key.get_secret_value()
    ids = [k.access_key_id for k in settings.client_keys()]
    assert ids == [k["accessKeyId"] for k in values.get("clientKeys", [])]
    for key, given in zip(settings.client_keys(), values.get("clientKeys", [])):
        assert key.permission == given["permission"]
        assert key.buckets == given.get("buckets")
        if "secretAccessKey" in given:
            assert key.secret_access_key.get_secret_value() == given["secretAccessKey"]
    if endpoint and not values.get("existingSecret"):
        assert settings.upstream.access_key_id == values["upstreamCredentials"]["accessKeyId"]
        assert settings.upstream.secret_access_key.get_secret_value() == values["upstreamCredentials"]["secretAccessKey"]


def test_service_reaches_the_pods(scenario):
    name, r = scenario
    deployment, service = r.one("Deployment"), r.one("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    container = find_container(pod_spec(deployment), "r2-gateway")
    port_names = {p["name"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_every_env_name_is_known(scenario):
    name, r = scenario
    for obj in r.objects:
        if obj["kind"] in ("Deployment", "Pod"):
            spec = pod_spec(obj)
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                for e in c.get("env", []):
                    check_env_name(e["name"])


def test_pods_run_as_non_root(scenario):
    name, r = scenario
    spec = pod_spec(r.one("Deployment"))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["automountServiceAccountToken"] is False


def test_notes_render(scenario):
    name, r = scenario
    assert "r2-gateway" in r.notes and ".svc:8080" in r.notes
    assert ("embedded in-memory upstream" in r.notes) == (name == "defaults")


# --- particular scenarios -----------------------------------------------------------------------------

def test_defaults_create_no_secret():
    r = render()
    assert not r.of_kind("Secret")
    assert not r.of_kind("HorizontalPodAutoscaler") and not r.of_kind("ServiceMonitor")
    assert r.one("Deployment")["spec"]["replicas"] == 1


def test_existing_secret_is_used_not_created():
    values = SCENARIOS["existing-secret"]
    r = render(values)
    assert not r.of_kind("Secret")
    spec = pod_spec(r.one("Deployment"))
    assert {"name": "r2-gateway-secrets", "secret": {"secretName": "my-r2-gateway-credentials", "defaultMode": 0o440}} \
        in spec["volumes"]
    env = {e["name"]: e for e in find_container(spec, "r2-gateway")["env"]}
    assert env["R2GW_UPSTREAM_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-r2-gateway-credentials", "key": "upstream-access-key-id"}
    assert env["R2GW_UPSTREAM_SECRET_ACCESS_KEY_FILE"]["value"] == \
        "/var/run/secrets/r2-gateway/upstream-secret-access-key"
    config = yaml.safe_load(r.one("ConfigMap")["data"]["config.yaml"])
    assert config["keys"] == [{"access_key_id": "app", "permission": "object-read-only", "buckets": ["public"],
                               "secret_access_key_file": "/var/run/secrets/r2-gateway/client-app"}]
    assert r.one("Deployment")["spec"]["replicas"] == 3


def test_secret_values_never_reach_the_configmap():
    r = render(SCENARIOS["upstream"])
    text = r.one("ConfigMap")["data"]["config.yaml"]
    for secret in ("upstream-secret", "writer-secret", "ops-secret", "UPSTREAMKEY"):
        assert secret not in text
    assert r.one("Secret")["type"] == "Opaque"


def test_hpa_pdb_and_servicemonitor():
    r = render(SCENARIOS["hpa-servicemonitor"])
    deployment, service = r.one("Deployment"), r.one("Service")
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    hpa = r.one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    pdb = r.one("PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    assert sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert endpoint["port"] == "metrics" and ports["metrics"]["targetPort"] == "metrics"
    container = find_container(pod_spec(deployment), "r2-gateway")
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    # drain_timeout 60 → grace period follows
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] == 60 + 5 + 10


def test_servicemonitor_on_the_main_port_by_default():
    r = render({"serviceMonitor": {"enabled": True}})
    (endpoint,) = r.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"


def test_tls_listener():
    r = render(SCENARIOS["tls"])
    spec = pod_spec(r.one("Deployment"))
    container = find_container(spec, "r2-gateway")
    config = yaml.safe_load(r.one("ConfigMap")["data"]["config.yaml"])
    assert config["tls"] == {"cert": "/etc/r2-gateway/tls/tls.crt", "key": "/etc/r2-gateway/tls/tls.key",
                             "listen": "0.0.0.0:8443"}
    assert {"name": "r2-gateway-tls", "mountPath": "/etc/r2-gateway/tls", "readOnly": True} in container["volumeMounts"]
    assert any(v.get("secret", {}).get("secretName") == "r2-gateway-tls" for v in spec["volumes"])
    assert {"name": "https", "port": 8443, "targetPort": "https", "protocol": "TCP"} in r.one("Service")["spec"]["ports"]


def test_listen_port_follows_config():
    r = render({"config": {"listen": "0.0.0.0:9000"}})
    container = find_container(pod_spec(r.one("Deployment")), "r2-gateway")
    assert container["ports"][0] == {"name": "http", "containerPort": 9000, "protocol": "TCP"}
    assert {"name": "R2GW_LISTEN", "value": "0.0.0.0:9000"} in container["env"]


def test_stores_credentials_per_store_and_irsa(tmp_path):
    values = SCENARIOS["stores"]
    r = render(values)
    sa = r.one("ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": values["serviceAccount"]["irsaRoleArn"]}
    assert "b-store-s3cr3t-value" not in r.one("ConfigMap")["data"]["config.yaml"]
    assert "CEPHBKEY" not in r.one("ConfigMap")["data"]["config.yaml"]
    wiring, *_ = _wiring("stores", r)
    settings = load_with_gateway(wiring, tmp_path)
    archive, ceph_b = settings.upstreams["archive"], settings.upstreams["ceph-b"]
    assert archive.uses_aws_chain and archive.region == "eu-central-1"
    assert (ceph_b.access_key_id, ceph_b.secret_access_key.get_secret_value()) == ("CEPHBKEY", "b-store-s3cr3t-value")
    assert [b.match for b in settings.buckets] == ["legacy-*", "media", "b-*"]
    assert settings.buckets[1].migrate_from.list == "merged" and settings.migrate_on_read.queue == 64


def test_a_sidecar_in_front_of_aws_s3_needs_no_static_keys(tmp_path):
    values = {"config": {"upstream": {"endpoint": "https://s3.eu-central-1.amazonaws.com", "region": "eu-central-1",
                                      "dialect": "aws"}},
              "upstreamCredentials": {"awsChain": True},
              "clientKeys": [{"accessKeyId": "app", "secretAccessKey": "app-secret", "permission": "object-read-write"}],
              "serviceAccount": {"irsaRoleArn": "arn:aws:iam::123456789012:role/app-s3"}}
    r = render(values)
    k8s_validate(r.objects)
    assert set(secret_data_of(r)) == {"client-app"}
    container = find_container(pod_spec(r.one("Deployment")), "r2-gateway")
    assert not [e for e in container["env"] if e["name"].startswith("R2GW_UPSTREAM")]
    wiring = check_gateway_container(pod_spec(r.one("Deployment")), container, _by_name(r, "ConfigMap"),
                                     _by_name(r, "Secret"))
    settings = load_with_gateway(wiring, tmp_path)
    assert settings.upstream.uses_aws_chain
    assert r.one("ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("app-s3")


def test_store_credentials_from_an_existing_secret():
    values = {**SCENARIOS["stores"], "existingSecret": "mine", "storeCredentials": {"ceph-b": {}}}
    del values["upstreamCredentials"], values["clientKeys"]
    r = render(values)
    assert not r.of_kind("Secret")
    config = yaml.safe_load(r.one("ConfigMap")["data"]["config.yaml"])
    assert config["upstreams"]["ceph-b"]["secret_access_key_file"] == \
        "/var/run/secrets/r2-gateway/store-ceph-b-secret-access-key"
    spec = pod_spec(r.one("Deployment"))
    check_gateway_container(spec, find_container(spec, "r2-gateway"), _by_name(r, "ConfigMap"), {}, placeholder_secrets={
        "mine": {"upstream-access-key-id", "upstream-secret-access-key", "store-ceph-b-access-key-id",
                 "store-ceph-b-secret-access-key"}})


def secret_data_of(r: Rendered) -> dict:
    import base64
    return {k: base64.b64decode(v).decode() for k, v in (r.one("Secret").get("data") or {}).items()}


@pytest.mark.parametrize("values, message", [
    ({"config": {"upstream": {"endpoint": "http://s3:9000"}}}, "upstreamCredentials.secretAccessKey"),
    ({"config": {"upstream": {"endpoint": "http://s3:9000"}},
      "upstreamCredentials": {"awsChain": True, "secretAccessKey": "x"}}, "upstreamCredentials.awsChain"),
    ({"storeCredentials": {"ghost": {"accessKeyId": "a", "secretAccessKey": "b"}}}, "no store ghost"),
    ({"config": {"upstreams": {"b": {"endpoint": "http://b:1"}}}, "storeCredentials": {"b": {"accessKeyId": "a"}}},
     "set accessKeyId and secretAccessKey"),
    ({"upstreamCredentials": {"accessKeyId": "a", "secretAccessKey": "b"}}, "config.upstream.endpoint is not"),
    ({"replicaCount": 2}, "embedded in-memory upstream is per pod"),
    ({"clientKeys": [{"accessKeyId": "a", "permission": "admin-read-write"}]}, "set secretAccessKey"),
    ({"existingSecret": "s", "clientKeys": [{"accessKeyId": "a", "secretAccessKey": "x",
                                             "permission": "admin-read-write"}]}, "comes from key client-a"),
    ({"terminationGracePeriodSeconds": 20}, "must exceed config.drain_timeout"),
    ({"serviceMonitor": {"enabled": True}, "config": {"metrics": {"enabled": False}}}, "config.metrics.enabled"),
])
def test_template_checks_refuse_unusable_values(values, message):
    with pytest.raises(HelmRenderError, match=message):
        render(values)


@pytest.mark.parametrize("values", [
    {"config": {"no_such_key": 1}},
    {"config": {"upstream": {"secret_access_key": "a secret in a ConfigMap"}}},
    {"config": {"keys": [{"access_key_id": "a", "secret_access_key": "inline"}]}},
    {"config": {"keys": [{"access_key_id": "a", "secret_access_key_file": "/f", "permission": "admin-read-write",
                          "buckets": ["b"]}]}},
    {"config": {"mode": "permissive"}},
    {"config": {"upstream": {"endpoint": "http://s3:9000/path"}}},
    {"config": {"listen": "8080"}},
    {"clientKeys": [{"accessKeyId": "a", "secretAccessKey": "x", "permission": "admin-read-write",
                     "buckets": ["b"]}]},
    {"image": {"pullPolicy": "Sometimes"}},
    {"config": {"upstreams": {"b": {"endpoint": "http://b:1", "secret_access_key": "inline"}}}},
    {"config": {"upstreams": {"default": {"endpoint": "http://b:1"}}}},
    {"config": {"upstreams": {"b": {"region": "eu"}}}},
    {"config": {"buckets": [{"upstream": "b"}]}},
    {"config": {"buckets": [{"match": "a", "migrate_from": {"upstream": "b", "list": "everything"}}]}},
    {"storeCredentials": {"b": {"secretAccessKey": "x", "region": "eu"}}},
    {"serviceAccount": {"irsaRoleArn": "my-role"}},
])
def test_schema_rejects_bad_values(values):
    """values.schema.json, as Helm itself enforces it on install."""
    with pytest.raises(HelmRenderError, match="schema"):
        render(values)


# --- values.schema.json mirrors the gateway's settings --------------------------------------------------

def _schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def test_schema_is_a_valid_json_schema_and_accepts_the_defaults():
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


def test_config_schema_mirrors_the_gateway_settings():
    """Every gateway config key is in values.schema.json's config, and nothing else; enums agree.

    Secret values are the one difference: the schema has only their ``*_file`` form.
    """
    import typing

    from pydantic import BaseModel

    from gateway.config import ClientKey, Settings

    def walk(model: type[BaseModel], node: dict, where: str) -> None:
        props = node["properties"]
        assert node.get("additionalProperties") is False, f"{where}: unknown keys must be refused"
        expected = set()
        for name, field in model.model_fields.items():
            ann = field.annotation
            secret = "SecretStr" in str(ann)
            key = f"{name}_file" if secret else name
            expected.add(key)
            assert key in props, f"{where}.{key}: missing from values.schema.json"
            sub = props[key]
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, sub, f"{where}.{key}")
            elif typing.get_origin(ann) is list and typing.get_args(ann)[0] is ClientKey:
                walk(ClientKey, sub["items"], f"{where}.{key}[]")
            literal = [a for a in [ann, *typing.get_args(ann)] if typing.get_origin(a) is typing.Literal]
            if literal:
                assert sorted(sub["enum"]) == sorted(typing.get_args(literal[0])), f"{where}.{key}: enum"
        assert set(props) == expected, f"{where}: schema has keys the gateway does not: {set(props) - expected}"

    walk(Settings, _schema()["properties"]["config"], "config")


def test_sidecar_template_in_a_parent_chart(tmp_path):
    """Another chart vendors this one and includes r2-gateway.sidecarContainer in its pod."""
    parent = tmp_path / "my-app"
    (parent / "templates").mkdir(parents=True)
    shutil.copytree(CHART, parent / "charts" / "r2-gateway")
    (parent / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "my-app", "version": "1.0.0",
        "dependencies": [{"name": "r2-gateway", "version": "0.1.0"}]}))
    (parent / "values.yaml").write_text(yaml.safe_dump({"r2-gateway": {**UPSTREAM, "standalone": False}}))
    readme = (CHART / "README.md").read_text()
    # the pod template the chart README documents, verbatim
    snippet = readme.split("<!-- sidecar-example -->")[1].split("```yaml")[1].split("```")[0]
    (parent / "templates" / "deployment.yaml").write_text(snippet)
    r = helm_render(parent, release="shop")
    k8s_validate(r.objects)
    assert sorted(o["kind"] for o in r.objects) == ["ConfigMap", "Deployment", "Secret"]
    deployment = r.one("Deployment")
    spec = pod_spec(deployment)
    gw = find_container(spec, "r2-gateway")
    assert gw in spec["initContainers"] and gw["restartPolicy"] == "Always"
    wiring = check_gateway_container(spec, gw, _by_name(r, "ConfigMap"), _by_name(r, "Secret"))
    settings = load_with_gateway(wiring, tmp_path / "run")
    assert [k.access_key_id for k in settings.client_keys()] == ["app-writer", "ops"]
    app = find_container(spec, "app")
    env = {e["name"]: e for e in app["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://127.0.0.1:8080"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "shop-r2-gateway",
                                                                        "key": "client-app-writer"}
    assert "checksum/config" in deployment["spec"]["template"]["metadata"]["annotations"]

    # sidecar.native: false → an ordinary container (no restartPolicy)
    (parent / "values.yaml").write_text(yaml.safe_dump(
        {"r2-gateway": {**UPSTREAM, "standalone": False, "sidecar": {"native": False}}}))
    r = helm_render(parent, release="shop")
    gw = find_container(pod_spec(r.one("Deployment")), "r2-gateway")
    assert "restartPolicy" not in gw


def test_standalone_false_renders_only_what_a_sidecar_reads():
    r = render({**UPSTREAM, "standalone": False})
    assert sorted(o["kind"] for o in r.objects) == ["ConfigMap", "Secret"]
    assert "sidecar use" in r.notes and "http://127.0.0.1:8080" in r.notes
