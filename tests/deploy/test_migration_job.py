"""The bulk copy as Kubernetes runs it: the chart's ``migration`` Indexed Job and the sidecar example's
one-off Job, rendered by real Helm / kustomize, validated against Kubernetes' schemas, and their
exact command lines run — with the pod's config, Secret files and environment, the upstream swapped
for a local moto server, ``$(JOB_COMPLETION_INDEX)`` set as the Job controller sets it."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from . import (CHART, HelmRenderError, check_env_name, clean_env, env_from_container, file_in_volume,
               find_container, gateway_cli, helm_render, k8s_validate, kustomize, materialize, mount_for, pod_spec,
               secret_data)

UPSTREAM = {
    "config": {"upstream": {"endpoint": "http://rook-ceph-rgw-objects.rook-ceph.svc:80"}},
    "upstreamCredentials": {"accessKeyId": "UPSTREAMKEY", "secretAccessKey": "upstream-secret"},
}
MIGRATION = {**UPSTREAM, "migration": {"enabled": True, "from": "default/media-2019", "to": "default/media",
                                       "shards": 3, "concurrency": 8, "metricsPort": 9102}}
INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def _by_name(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def job_wiring(spec: dict, container: dict, configmaps: dict, secrets: dict) -> dict:
    """What the migrate container reads (config text, environment, secret files), checked: its config
    file is in a mounted ConfigMap, every secret file it is told of in a mounted Secret that has it."""
    args = container["args"]
    assert args[0] == "migrate" and "--config" in args, args
    path = args[args.index("--config") + 1]
    mount, volume = mount_for(container, spec, path)
    cm = configmaps[volume["configMap"]["name"]]
    config_text = cm["data"][file_in_volume(mount, volume, path)]
    for e in container.get("env", []):
        check_env_name(e["name"])
    plain = [e for e in container["env"] if "fieldRef" not in e.get("valueFrom", {})]
    env = env_from_container({"env": plain}, {n: secret_data(o) for n, o in secrets.items()})
    wanted = [v for k, v in env.items() if k.endswith("_FILE")]

    def collect(node):
        if isinstance(node, dict):
            for k, v in node.items():
                wanted.append(v) if k.endswith("_file") else collect(v)
        elif isinstance(node, list):
            for item in node:
                collect(item)
    collect(yaml.safe_load(config_text))
    files, secret_mount = {}, None
    for p in wanted:
        m, v = mount_for(container, spec, p)
        data = secret_data(secrets[v["secret"]["secretName"]])
        assert file_in_volume(m, v, p) in data, p
        files, secret_mount = data, m["mountPath"]
    csc = container["securityContext"]
    assert csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["enableServiceLinks"] is False
    assert spec["restartPolicy"] == "Never"
    return {"config": config_text, "env": env, "files": files, "mount": secret_mount}


def run_as_the_pod(wiring: dict, args: list[str], index: int, tmp_path, moto) -> subprocess.CompletedProcess:
    """The container's command, for real: its config and Secret's files moved to ``tmp_path``, the
    upstream swapped for ``moto``, ``$(JOB_COMPLETION_INDEX)`` expanded as the kubelet does."""
    config = yaml.safe_load(wiring["config"])
    config["upstream"]["endpoint"] = moto.endpoint
    files = {k: (moto.secret_key if "secret" in k else v) for k, v in wiring["files"].items()}
    cfg, env = materialize(yaml.safe_dump(config), wiring["env"], files, wiring["mount"], tmp_path / f"pod-{index}")
    env = {k: (moto.access_key if k == "R2GW_UPSTREAM_ACCESS_KEY_ID" else v) for k, v in env.items()}
    argv = [a.replace("$(JOB_COMPLETION_INDEX)", str(index)) for a in args]
    argv[argv.index("--config") + 1] = str(cfg)
    if "--metrics-listen" in argv:   # the pod's port, on loopback here
        argv[argv.index("--metrics-listen") + 1] = "127.0.0.1:0"
    return subprocess.run([*gateway_cli(), *argv], env=clean_env(env), capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def moto():
    from tests.upstreams.moto_server import MotoServer
    server = MotoServer()
    server.start()
    yield server
    server.stop()


def _fill(moto, src: str, dst: str, n: int) -> None:
    import boto3
    c = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id=moto.access_key,
                     aws_secret_access_key=moto.secret_key)
    c.create_bucket(Bucket=src)
    c.create_bucket(Bucket=dst)
    for i in range(n):
        c.put_object(Bucket=src, Key=f"k/{i:03d}", Body=b"x" * i, Metadata={"i": str(i)})


# --- the chart -----------------------------------------------------------------------------------------

def test_no_job_by_default():
    assert not helm_render(CHART, UPSTREAM).of_kind("Job")


def test_migration_job_renders_an_indexed_job_with_the_gateways_wiring(tmp_path, moto):
    r = helm_render(CHART, MIGRATION)
    k8s_validate(r.objects)
    job = r.one("Job")
    spec = pod_spec(job)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    assert job["spec"]["backoffLimitPerIndex"] == 3
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert {"action": "FailJob", "onExitCodes": {"containerName": "migrate", "operator": "In", "values": [2]}} in rules
    (container,) = spec["containers"]
    args = container["args"]
    assert args[:3] == ["migrate", "--config", "/etc/r2-gateway/config/config.yaml"]
    assert args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)/3"
    assert args[args.index("--from") + 1] == "default/media-2019" and args[args.index("--to") + 1] == "default/media"
    assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"fieldPath": INDEX_FIELD}}} in container["env"]
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in container["ports"]

    # the same image, environment, mounts and volumes as the gateway's own container
    deployment = r.one("Deployment")
    gw = find_container(pod_spec(deployment), "r2-gateway")
    assert container["image"] == gw["image"]
    assert [e for e in container["env"] if e["name"] != "JOB_COMPLETION_INDEX"] == gw["env"]
    assert container["volumeMounts"] == gw["volumeMounts"]
    assert spec["volumes"] == pod_spec(deployment)["volumes"]
    assert spec["serviceAccountName"] == pod_spec(deployment)["serviceAccountName"]
    assert "startupProbe" not in container and "lifecycle" not in container
    # the Service and the PDB do not select the Job's pods
    labels = job["spec"]["template"]["metadata"]["labels"]
    for selector in (r.one("Service")["spec"]["selector"], r.one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]):
        assert not selector.items() <= labels.items()

    # each shard's pod, run for real against moto: together they copy every key once
    wiring = job_wiring(spec, container, _by_name(r.objects, "ConfigMap"), _by_name(r.objects, "Secret"))
    _fill(moto, "media-2019", "media", 30)
    summaries = []
    for index in range(3):
        proc = run_as_the_pod(wiring, args, index, tmp_path, moto)
        assert proc.returncode == 0, proc.stderr[-3000:]
        summaries.append(json.loads(proc.stdout.splitlines()[-1]))
        assert '"event":"progress"' in proc.stderr          # --progress json: the pod's log
    assert [s["shard"] for s in summaries] == ["0/3", "1/3", "2/3"]
    assert sum(s["copied"] for s in summaries) == 30 and all(s["failed"] == 0 for s in summaries)


def test_migration_job_by_bucket_with_report_volume_and_extra_args():
    r = helm_render(CHART, {**UPSTREAM, "migration": {
        "enabled": True, "bucket": "media", "prefix": "2019/", "extraArgs": ["--delete-extra"],
        "reportVolume": {"persistentVolumeClaim": {"claimName": "migration-reports"}}, "ttlSecondsAfterFinished": 60}})
    k8s_validate(r.objects)
    job = r.one("Job")
    container = pod_spec(job)["containers"][0]
    args = container["args"]
    assert args[args.index("--bucket") + 1] == "media" and "--from" not in args
    assert args[args.index("--prefix") + 1] == "2019/"
    assert args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)/1"
    assert args[-1] == "--delete-extra"
    assert args[args.index("--report") + 1] == "/var/lib/r2-gateway-migration/report-$(JOB_COMPLETION_INDEX).jsonl"
    assert {"name": "migration-report", "mountPath": "/var/lib/r2-gateway-migration"} in container["volumeMounts"]
    assert {"name": "migration-report", "persistentVolumeClaim": {"claimName": "migration-reports"}} \
        in pod_spec(job)["volumes"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 60 and "ports" not in container


@pytest.mark.parametrize("values, message", [
    ({"migration": {"enabled": True}}, "set migration.bucket"),
    ({"migration": {"enabled": True, "from": "default/a"}}, "set migration.bucket"),
    ({"migration": {"enabled": True, "bucket": "b", "from": "default/a", "to": "default/b"}}, "either migration.bucket"),
])
def test_migration_job_refuses_unusable_values(values, message):
    with pytest.raises(HelmRenderError, match=re.escape(message)):
        helm_render(CHART, {**UPSTREAM, **values})


@pytest.mark.parametrize("migration", [{"shards": 0}, {"from": "no-slash"}, {"concurrency": 0}, {"nosuch": 1}])
def test_schema_rejects_bad_migration_values(migration):
    with pytest.raises(HelmRenderError, match="schema"):
        helm_render(CHART, {**UPSTREAM, "migration": {"enabled": True, "bucket": "b", **migration}})


# --- the sidecar example -----------------------------------------------------------------------------

def test_sidecar_example_job_runs(tmp_path, moto):
    objects = kustomize()
    k8s_validate(objects)
    job = next(o for o in objects if o["kind"] == "Job")
    spec = pod_spec(job)
    (container,) = spec["containers"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    gw = find_container(pod_spec(deployment), "r2-gateway")
    assert container["image"] == gw["image"]
    # the sidecar's config and Secret: the same volumes, the same upstream credentials
    assert {v["name"]: v for v in spec["volumes"]}["r2-gateway-config"] == \
        {v["name"]: v for v in pod_spec(deployment)["volumes"]}["r2-gateway-config"]
    assert [e for e in gw["env"] if e["name"].startswith("R2GW_UPSTREAM")] == container["env"]
    wiring = job_wiring(spec, container, _by_name(objects, "ConfigMap"), _by_name(objects, "Secret"))
    args = container["args"]
    src, dst = args[args.index("--from") + 1].split("/")[1], args[args.index("--to") + 1].split("/")[1]
    _fill(moto, src, dst, 12)
    proc = run_as_the_pod(wiring, args, 0, tmp_path, moto)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["copied"], summary["failed"]) == (12, 0)
    again = run_as_the_pod(wiring, args, 0, tmp_path, moto)         # a second run: nothing to do
    assert json.loads(again.stdout.splitlines()[-1])["skipped"] == 12
