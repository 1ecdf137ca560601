"""The real gateway, started the way the chart and the sidecar example start it.

The rendered config file, the Secret's files and the container's environment (listen address moved
to a free port of 127.0.0.1, in-pod paths moved to a temp dir), then the exact probes of the pod spec,
the image's HEALTHCHECK command, a request as the example's app makes it, and SIGTERM → exit 0.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from . import (CHART, check_gateway_container, clean_env, find_container, free_port, gateway_cli, helm_render,
               kustomize, pod_spec)
from .test_dockerfile import healthcheck_command

pytestmark = pytest.mark.slow


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class Running:
    def __init__(self, cfg: Path, env: dict[str, str], workdir: Path):
        self.port = free_port()
        env = dict(env, R2GW_LISTEN=f"127.0.0.1:{self.port}")
        self.env = clean_env(env)
        self.log = open(workdir / "gateway.log", "wb")
        self.proc = subprocess.Popen([*gateway_cli(), "serve", "--config", str(cfg)], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.logpath = workdir / "gateway.log"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, path: str, want: int = 200, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gateway exited {self.proc.returncode}: {self.logpath.read_text()[-3000:]}"
            try:
                last = _get(self.url(path))
                if last == want:
                    return
            except OSError as e:
                last = e
            time.sleep(0.3)
        raise AssertionError(f"{path}: {last} after {timeout}s; log: {self.logpath.read_text()[-3000:]}")

    def stop(self, timeout: float) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.log.close()


def _probe(container: dict, kind: str) -> str:
    return container[kind]["httpGet"]["path"]


def _exercise(container: dict, running: Running) -> None:
    running.wait(_probe(container, "startupProbe"))
    assert _get(running.url(_probe(container, "livenessProbe"))) == 200
    running.wait(_probe(container, "readinessProbe"))      # config loaded, upstream reachable
    # the image's HEALTHCHECK, verbatim, with the environment the image gives it
    hc = subprocess.run(healthcheck_command(), env=running.env, capture_output=True, text=True, timeout=30)
    assert hc.returncode == 0, hc.stderr


def test_chart_defaults_start_probe_and_drain(tmp_path):
    """The defaults set no upstream: the demo image's shape (the embedded extra, which the test
    environment has); the production image refuses that, see test_production."""
    r = helm_render(CHART)
    spec = pod_spec(r.one("Deployment"))
    container = find_container(spec, "r2-gateway")
    configmaps = {o["metadata"]["name"]: o for o in r.of_kind("ConfigMap")}
    wiring = check_gateway_container(spec, container, configmaps, {})
    cfg, env = wiring.materialize(tmp_path)
    running = Running(cfg, env, tmp_path)
    try:
        _exercise(container, running)
    finally:
        code = running.stop(timeout=spec["terminationGracePeriodSeconds"])
    assert code == 0, running.logpath.read_text()[-3000:]


def test_sidecar_example_serves_the_app(tmp_path):
    """The example's config with its upstream swapped for a local moto server; the app's key works."""
    import boto3
    from botocore.config import Config

    from tests.upstreams.moto_server import MotoServer

    objects = kustomize()
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    spec = pod_spec(deployment)
    container = find_container(spec, "r2-gateway")
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    wiring = check_gateway_container(spec, container, configmaps, secrets)

    moto = MotoServer(log_path=tmp_path / "moto.log")
    moto.start()
    try:
        config = yaml.safe_load(wiring.config_text)
        config["upstream"]["endpoint"] = moto.endpoint
        for name, store in config.get("upstreams", {}).items():   # every store of the example, here one moto
            store["endpoint"] = moto.endpoint
            store["internal_bucket"] = f"r2gw-internal-{name}"     # (one bucket namespace now)
        wiring.config_text = yaml.safe_dump(config)
        wiring.secret_files = dict(wiring.secret_files, **{"upstream-secret-access-key": moto.secret_key})
        cfg, env = wiring.materialize(tmp_path)
        env["R2GW_UPSTREAM_ACCESS_KEY_ID"] = moto.access_key
        # the keyless store's AWS chain: what IRSA gives the pod is played by the chain's environment
        env.update({"AWS_ACCESS_KEY_ID": moto.access_key, "AWS_SECRET_ACCESS_KEY": moto.secret_key,
                    "AWS_EC2_METADATA_DISABLED": "true"})
        bucket = config["keys"][0]["buckets"][0]
        boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                     aws_access_key_id=moto.access_key, aws_secret_access_key=moto.secret_key
                     ).create_bucket(Bucket=bucket)

        running = Running(cfg, env, tmp_path)
        try:
            _exercise(container, running)
            app = {e["name"]: e for e in find_container(spec, "app")["env"]}
            s3 = boto3.client(
                "s3", endpoint_url=running.url(""), region_name=app["AWS_REGION"]["value"],
                aws_access_key_id=app["AWS_ACCESS_KEY_ID"]["value"],
                aws_secret_access_key=wiring.secret_files[app["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"]],
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
            s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"through the sidecar")
            assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"through the sidecar"
        finally:
            code = running.stop(timeout=spec["terminationGracePeriodSeconds"])
        assert code == 0, running.logpath.read_text()[-3000:]
    finally:
        moto.stop()
