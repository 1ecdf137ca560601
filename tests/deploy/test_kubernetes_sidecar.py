"""deploy/kubernetes: the sidecar example, rendered by real kustomize (kubectl kustomize, offline)."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from . import (check_env_name, check_gateway_container, clean_env, find_container, gateway_cli, k8s_validate,
               kustomize, load_with_gateway, pod_spec)


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return kustomize()


def _parts(objects):
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    spec = pod_spec(deployment)
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    return deployment, spec, configmaps, secrets


def test_renders_valid_kubernetes_objects(objects):
    k8s_validate(objects)
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "Deployment", "Job", "Secret", "ServiceAccount"]


def test_keyless_store_signs_with_irsa_others_with_their_secrets(objects, tmp_path):
    _, spec, configmaps, secrets = _parts(objects)
    (sa,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    assert spec["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    wiring = check_gateway_container(spec, find_container(spec, "r2-gateway"), configmaps, secrets)
    settings = load_with_gateway(wiring, tmp_path)
    assert settings.upstreams["archive"].uses_aws_chain
    backup = settings.upstreams["backup"]
    assert (backup.access_key_id, backup.secret_access_key.get_secret_value()) == (
        "REPLACE-backup-access-key-id", "REPLACE-backup-secret-access-key")
    route = {b.match: b for b in settings.buckets}["my-app-uploads"]
    assert (route.migrate_from.upstream, route.migrate_from.bucket) == ("archive", "my-app-uploads-2019")


def test_gateway_is_a_native_sidecar(objects):
    _, spec, _, _ = _parts(objects)
    gw = find_container(spec, "r2-gateway")
    assert gw in spec["initContainers"] and gw["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert gw["image"] == "r2-gateway:0.1.0"


def test_gateway_container_wiring(objects):
    _, spec, configmaps, secrets = _parts(objects)
    gw = find_container(spec, "r2-gateway")
    wiring = check_gateway_container(spec, gw, configmaps, secrets)
    assert wiring.config_mount_file == "/etc/r2-gateway/config.yaml"
    assert wiring.secret_mount == "/var/run/secrets/r2-gateway"
    # upstream secret as a file, its (non-secret) key id from the Secret through the environment
    assert wiring.env["R2GW_UPSTREAM_SECRET_ACCESS_KEY_FILE"] == \
        "/var/run/secrets/r2-gateway/upstream-secret-access-key"
    assert wiring.env["R2GW_UPSTREAM_ACCESS_KEY_ID"] == "REPLACE-upstream-access-key-id"


def test_every_env_name_is_known(objects):
    _, spec, _, _ = _parts(objects)
    for c in spec.get("initContainers", []) + spec["containers"]:
        for e in c.get("env", []):
            check_env_name(e["name"])


def test_app_reaches_the_sidecar_with_a_configured_key(objects):
    _, spec, configmaps, secrets = _parts(objects)
    gw, app = find_container(spec, "r2-gateway"), find_container(spec, "app")
    wiring = check_gateway_container(spec, gw, configmaps, secrets)
    config = yaml.safe_load(wiring.config_text)
    env = {e["name"]: e for e in app["env"]}
    port = int(wiring.env["R2GW_LISTEN"].rpartition(":")[2])
    assert env["AWS_ENDPOINT_URL"]["value"] == f"http://127.0.0.1:{port}"
    assert env["AWS_REGION"]["value"] == "auto"
    (key,) = [k for k in config["keys"] if k["access_key_id"] == env["AWS_ACCESS_KEY_ID"]["value"]]
    ref = env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]
    # the app's secret is the very Secret key the gateway reads as that key's secret file
    assert key["secret_access_key_file"] == f"{wiring.secret_mount}/{ref['key']}"
    assert ref["name"] == next(v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v)


def test_config_passes_the_gateway_loader(objects, tmp_path):
    _, spec, configmaps, secrets = _parts(objects)
    wiring = check_gateway_container(spec, find_container(spec, "r2-gateway"), configmaps, secrets)
    settings = load_with_gateway(wiring, tmp_path)
    assert settings.upstream.endpoint == "http://rook-ceph-rgw-objects.rook-ceph.svc:80"
    assert settings.upstream.secret_access_key.get_secret_value() == "REPLACE-upstream-secret-access-key"
    (key,) = settings.client_keys()
    assert (key.access_key_id, key.permission) == ("my-app", "object-read-write")
    assert key.secret_access_key.get_secret_value() == "REPLACE-a-long-random-secret-for-my-app"


def test_config_passes_check_config(objects, tmp_path):
    """The real CLI, with the pod's environment and the Secret's files (paths moved to a temp dir)."""
    _, spec, configmaps, secrets = _parts(objects)
    wiring = check_gateway_container(spec, find_container(spec, "r2-gateway"), configmaps, secrets)
    cfg, env = wiring.materialize(tmp_path)
    proc = subprocess.run([*gateway_cli(), "check-config", str(cfg)], env=clean_env(env),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok:"), proc.stdout
    assert "1 client key(s)" in proc.stdout and "rook-ceph-rgw-objects" in proc.stdout

    # and it does catch a broken one: the same environment without the upstream key id
    env.pop("R2GW_UPSTREAM_ACCESS_KEY_ID")
    proc = subprocess.run([*gateway_cli(), "check-config", str(cfg)], env=clean_env(env),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "upstream" in proc.stderr
