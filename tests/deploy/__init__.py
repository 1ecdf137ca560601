"""Helpers for the deployment tests: real Helm (helm-sdkpy, Helm v4's Go library) and kustomize.

helm-sdkpy exposes ``Lint`` (offline) but no ``helm template``: its ``Install`` always talks to a
cluster. ``helm_render`` therefore runs the real ``Install`` against :class:`FakeKubeAPI`, a minimal
Kubernetes API server on 127.0.0.1 that serves discovery and accepts every write. Helm does all its
own work — values coalescing, ``values.schema.json`` validation, rendering every template and
NOTES.txt, mapping each kind through discovery — and returns the release with its manifest, which is
exactly what ``helm template`` prints. Nothing leaves the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "r2-gateway"
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent

# (resource, kind, namespaced) per group/version the fake cluster serves
_CORE = [("configmaps", "ConfigMap", True), ("secrets", "Secret", True), ("services", "Service", True),
         ("serviceaccounts", "ServiceAccount", True), ("pods", "Pod", True),
         ("namespaces", "Namespace", False)]
_GROUPS = {
    "apps/v1": [("deployments", "Deployment", True)],
    "batch/v1": [("jobs", "Job", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "monitoring.coreos.com/v1": [("servicemonitors", "ServiceMonitor", True)],
}


class FakeKubeAPI:
    """Just enough of a Kubernetes API server for ``helm install`` (no wait) to succeed."""

    def __init__(self, kube_version: str = "1.32.0", groups: dict | None = None):
        self.kube_version = kube_version
        self.groups = _GROUPS if groups is None else groups
        self.created: list[dict] = []          # JSON objects Helm created (the chart's resources)
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def _resource_list(self, gv: str, resources) -> dict:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": n, "singularName": k.lower(), "namespaced": ns, "kind": k,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for n, k, ns in resources]}

    def _handler(self):
        api = self
        major, minor, _ = self.kube_version.split(".")

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self) -> None:
                self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                 "reason": "NotFound", "code": 404, "message": "not found"})

            def _any(self) -> None:
                path = urlparse(self.path).path.rstrip("/")
                api.requests.append((self.command, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "GET":
                    if path == "/version":
                        return self._send(200, {"major": major, "minor": minor,
                                                "gitVersion": f"v{api.kube_version}", "platform": "linux/amd64"})
                    if path == "/api":
                        return self._send(200, {"kind": "APIVersions", "versions": ["v1"],
                                                "serverAddressByClientCIDRs": [
                                                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
                    if path == "/apis":
                        return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                            {"name": gv.split("/")[0],
                             "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                             "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                            for gv in api.groups]})
                    if path == "/api/v1":
                        return self._send(200, api._resource_list("v1", _CORE))
                    for gv, resources in api.groups.items():
                        if path == f"/apis/{gv}":
                            return self._send(200, api._resource_list(gv, resources))
                    kinds = {r[0] for r in _CORE} | {r[0] for rs in api.groups.values() for r in rs}
                    if path.rsplit("/", 1)[-1] in kinds:  # a list (Helm's release storage): empty
                        return self._send(200, {"kind": "List", "apiVersion": "v1",
                                                "metadata": {"resourceVersion": "1"}, "items": []})
                    return self._not_found()  # no resource exists yet
                if self.command in ("POST", "PUT", "PATCH"):
                    if body.startswith(b"k8s\x00"):
                        # Helm's release record, written as protobuf: accept it without decoding
                        return self._send(201 if self.command == "POST" else 200, {
                            "kind": "Secret", "apiVersion": "v1",
                            "metadata": {"name": "release", "resourceVersion": "1"}})
                    obj = json.loads(body)
                    obj.setdefault("metadata", {}).setdefault("resourceVersion", "1")
                    if self.command == "POST":
                        api.created.append(obj)
                    return self._send(201 if self.command == "POST" else 200, obj)
                if self.command == "DELETE":
                    return self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
                return self._not_found()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        return Handler

    def __enter__(self) -> "FakeKubeAPI":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self, namespace: str) -> str:
        assert self._server is not None
        port = self._server.server_address[1]
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "fake", "user": {"token": "fake"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        })


# helm-sdkpy runs in a child process: the Go runtime inside it reads the environment the process
# started with (so Helm's and client-go's cache/config directories can only be moved out of $HOME
# that way), and a crash in Go cannot take the test process with it.
_HELM_CHILD = r"""
import asyncio, json, sys
import helm_sdkpy
req = json.load(sys.stdin)
cfg = helm_sdkpy.Configuration(namespace=req["namespace"], kubeconfig=req["kubeconfig"])
try:
    if req["op"] == "lint":
        out = asyncio.run(helm_sdkpy.Lint(cfg).run(req["chart"]))
    else:
        out = asyncio.run(helm_sdkpy.Install(cfg).run(
            req["release"], req["chart"], values=req["values"] or None, wait=False, timeout=60))
    json.dump({"result": out}, sys.stdout)
except helm_sdkpy.HelmError as e:
    json.dump({"error": str(e), "type": type(e).__name__}, sys.stdout)
"""


def _helm(op: str, chart: Path, **req) -> dict:
    """One helm-sdkpy call in a child process whose HOME and Helm/kube directories are a temp dir."""
    home = tempfile.mkdtemp(prefix="helm-home-")
    try:
        env = dict(os.environ, HOME=home, KUBECACHEDIR=os.path.join(home, "kube-cache"),
                   HELM_CONFIG_HOME=os.path.join(home, "config"), HELM_CACHE_HOME=os.path.join(home, "cache"),
                   HELM_DATA_HOME=os.path.join(home, "data"))
        req = {"op": op, "chart": str(chart), "namespace": "default", "kubeconfig": "/nonexistent/kubeconfig", **req}
        proc = subprocess.run([sys.executable, "-c", _HELM_CHILD], input=json.dumps(req), env=env,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:  # helm-sdkpy missing or broken: a failure, never a skip
            raise AssertionError(f"helm-sdkpy failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def helm_lint(chart: Path = CHART) -> dict:
    """``helm lint`` with real Helm (helm-sdkpy); the result as helm-sdkpy returns it."""
    out = _helm("lint", chart)
    if "error" in out:
        raise AssertionError(f"helm lint: {out['error']}")
    return out["result"]


class Rendered:
    """A rendered release: its manifest split into objects, plus NOTES.txt and what reached the API."""

    def __init__(self, release: dict, created: list[dict]):
        self.release = release
        self.manifest: str = release.get("manifest", "")
        self.notes: str = (release.get("info") or {}).get("notes", "")
        self.objects: list[dict] = [d for d in yaml.safe_load_all(self.manifest) if d]
        self.created = created

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
        return found[0]


class HelmRenderError(Exception):
    pass


def helm_render(chart: Path = CHART, values: dict | None = None, *, release: str = "r2gw",
                namespace: str = "storage", kube_version: str = "1.32.0",
                groups: dict | None = None) -> Rendered:
    """``helm install`` (real Helm v4) of ``chart`` into :class:`FakeKubeAPI`; the rendered release."""
    with FakeKubeAPI(kube_version, groups) as api, \
            tempfile.NamedTemporaryFile("w", suffix=".kubeconfig") as kc:
        kc.write(api.kubeconfig(namespace))
        kc.flush()
        out = _helm("install", chart, release=release, namespace=namespace, kubeconfig=kc.name,
                    values=values or None)
        if "error" in out:
            raise HelmRenderError(out["error"])
        return Rendered(out["result"], api.created)


def kustomize(path: Path = KUSTOMIZE_DIR) -> list[dict]:
    """``kubectl kustomize`` (offline), as objects."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render deploy/kubernetes (kubectl kustomize)"
    out = subprocess.run([kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


# --- what the gateway reads --------------------------------------------------------------------------

def gateway_env_names() -> dict[str, tuple[str, ...]]:
    from gateway.config import env_names
    return env_names()


def secret_leaves() -> set[tuple[str, ...]]:
    """Paths of the settings whose values are secrets (SecretStr): the only ones readable from files."""
    from pydantic import BaseModel, SecretStr

    from gateway.config import Settings

    out: set[tuple[str, ...]] = set()

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, prefix + (name,))
            elif ann is SecretStr or SecretStr in getattr(ann, "__args__", ()):
                out.add(prefix + (name,))
    walk(Settings, ())
    return out


def check_env_name(name: str) -> None:
    """Fail unless the gateway knows ``name`` (a setting, or a secret setting + ``_FILE``)."""
    names = gateway_env_names()
    if not name.startswith("R2GW_"):
        return
    if name in names:
        return
    assert name.endswith("_FILE") and name[:-5] in names, f"{name}: not a name the gateway reads"
    assert names[name[:-5]] in secret_leaves(), f"{name}: only secrets may be read from files"


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"] if obj["kind"] != "Pod" else obj["spec"]


def find_container(spec: dict, name: str) -> dict:
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name!r} in {[c['name'] for c in spec.get('containers', [])]}")


def container_port(container: dict, port: int | str) -> int:
    """A probe's port (a number or a port name) → the container port number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"port {port!r} is not a port of container {container['name']}")


def mount_for(container: dict, spec: dict, path: str) -> tuple[dict, dict]:
    """The volumeMount (and its volume) under which ``path`` lies in ``container``."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    assert best is not None, f"{path} is not under any volumeMount of {container['name']}"
    volume = next(v for v in spec.get("volumes", []) if v["name"] == best["name"])
    return best, volume


def file_in_volume(mount: dict, volume: dict, path: str) -> str:
    """The key (ConfigMap/Secret) that ``path`` is, inside ``mount`` of ``volume``."""
    rel = path[len(mount["mountPath"].rstrip("/")) + 1:]
    if mount.get("subPath"):
        rel = mount["subPath"] if rel == "" else rel
    src = volume.get("configMap") or volume.get("secret") or {}
    for item in src.get("items", []) or []:
        if item["path"] == rel:
            return item["key"]
    return rel


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_cli() -> list[str]:
    """The real CLI: the console script if installed, else ``python -m gateway``."""
    script = VENV_BIN / "r2-gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any R2GW_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("R2GW_")}
    env.update(extra or {})
    return env


def materialize(config_text: str, env: dict[str, str], secrets: dict[str, str], secret_mount: str,
                workdir: Path, config_mount: str | None = None) -> tuple[Path, dict[str, str]]:
    """Write a mounted config and Secret into ``workdir``, rewriting the in-pod paths to it.

    Returns the config file path and the environment with its paths rewritten the same way.
    """
    sdir = workdir / "secrets"
    sdir.mkdir(parents=True, exist_ok=True)
    for key, value in secrets.items():
        (sdir / key).write_text(value)
    text = config_text.replace(secret_mount.rstrip("/") + "/", str(sdir) + "/")
    cfg = workdir / "config.yaml"
    cfg.write_text(text)
    out = {}
    for k, v in env.items():
        v = v.replace(secret_mount.rstrip("/") + "/", str(sdir) + "/")
        if config_mount:
            v = v.replace(config_mount, str(cfg))
        out[k] = v
    return cfg, out


def env_from_container(container: dict, secrets: dict[str, dict[str, str]],
                       configmaps: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The container's environment as the kubelet would set it (value, secretKeyRef, configMapKeyRef)."""
    env: dict[str, str] = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            ref = e["valueFrom"]
            if "secretKeyRef" in ref:
                r = ref["secretKeyRef"]
                env[e["name"]] = secrets[r["name"]][r["key"]]
            elif "configMapKeyRef" in ref:
                r = ref["configMapKeyRef"]
                env[e["name"]] = (configmaps or {})[r["name"]][r["key"]]
            else:
                raise AssertionError(f"unsupported valueFrom in {e}")
    return env


def secret_data(secret: dict) -> dict[str, str]:
    import base64
    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out





# --- checks shared by the chart, the chart-as-sidecar and the kustomize example ----------------------

def k8s_validate(objects: list[dict], versions=("1.29.0", "1.32.0")) -> None:
    """Every built-in object against the Kubernetes OpenAPI schema (strict: no unknown fields)."""
    import kubernetes_validate

    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD's kind: no schema shipped
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = "/".join(str(p) for p in getattr(e, "path", []))
                raise AssertionError(f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {version}): "
                                     f"{getattr(e, 'message', e)} at {where}") from None


def _port_of(hostport: str) -> int:
    return int(hostport.rpartition(":")[2])


class Wiring:
    """What the gateway container in a pod will read, checked against the objects it comes from."""

    def __init__(self, config_text: str, env: dict[str, str], secret_files: dict[str, str],
                 secret_mount: str | None, config_mount_file: str):
        self.config_text = config_text
        self.env = env
        self.secret_files = secret_files
        self.secret_mount = secret_mount
        self.config_mount_file = config_mount_file

    def materialize(self, workdir: Path) -> tuple[Path, dict[str, str]]:
        return materialize(self.config_text, self.env, self.secret_files, self.secret_mount or "/nonexistent",
                           workdir)


def check_gateway_container(spec: dict, container: dict, configmaps: dict[str, dict],
                            secrets: dict[str, dict], *, placeholder_secrets: dict[str, set[str]] | None = None
                            ) -> Wiring:
    """Assert how a gateway container is wired: config, secrets, env, probes, security.

    ``configmaps``/``secrets``: name → object of what was rendered; ``placeholder_secrets``: name →
    the keys a Secret the user manages (existingSecret) must hold, for Secrets not rendered.
    Returns what the gateway would read, with the Secret's contents (placeholders for existingSecret).
    """
    placeholder_secrets = placeholder_secrets or {}
    # --- the command: serve --config <a file of a mounted ConfigMap> ---
    args = container.get("args", [])
    assert args[:1] == ["serve"] and "--config" in args, f"args {args}"
    config_path = args[args.index("--config") + 1]
    mount, volume = mount_for(container, spec, config_path)
    assert "configMap" in volume, f"{config_path} is not in a ConfigMap volume ({volume})"
    cm_name = volume["configMap"]["name"]
    assert cm_name in configmaps, f"ConfigMap {cm_name} (mounted at {mount['mountPath']}) is not rendered"
    key = file_in_volume(mount, volume, config_path)
    cm_data = configmaps[cm_name].get("data") or {}
    assert key in cm_data, f"--config {config_path}: ConfigMap {cm_name} has no key {key} ({list(cm_data)})"
    config_text = cm_data[key]
    config = yaml.safe_load(config_text) or {}

    # --- the environment: only names the gateway knows; secrets from the mounted Secret ---
    for e in container.get("env", []):
        check_env_name(e["name"])
    secret_volumes = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    all_secrets = {n: secret_data(o) for n, o in secrets.items()}
    for name, keys in placeholder_secrets.items():
        all_secrets[name] = {k: f"placeholder-{k}" for k in keys}
    for e in container.get("env", []):
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            assert ref["name"] in all_secrets, f"env {e['name']}: Secret {ref['name']} is not rendered or expected"
            assert ref["key"] in all_secrets[ref["name"]], f"env {e['name']}: Secret {ref['name']} has no key {ref['key']}"
    env = env_from_container(container, all_secrets)

    # every secret file the gateway is told to read lies in a mounted Secret that holds that key
    secret_paths = [v for k, v in env.items() if k.startswith("R2GW_") and k.endswith("_FILE")]

    def collect(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k.endswith("_file") and isinstance(v, str):
                    secret_paths.append(v)
                else:
                    collect(v)
        elif isinstance(node, list):
            for item in node:
                collect(item)
    collect(config)
    secret_mount = None
    files: dict[str, str] = {}
    for path in secret_paths:
        m, v = mount_for(container, spec, path)
        assert "secret" in v, f"{path} is not in a Secret volume ({v})"
        sname = v["secret"]["secretName"]
        assert sname in all_secrets, f"{path}: Secret {sname} is neither rendered nor an expected existing Secret"
        skey = file_in_volume(m, v, path)
        assert skey in all_secrets[sname], f"{path}: Secret {sname} has no key {skey} ({sorted(all_secrets[sname])})"
        assert secret_mount in (None, m["mountPath"]), "secret files from two mounts"
        secret_mount = m["mountPath"]
        files = all_secrets[sname]
    assert set(secret_volumes.values()) <= set(all_secrets), f"mounted Secrets {secret_volumes} not all known"
    # TLS certificate and key: files of a mounted Secret
    for path in [p for p in ((config.get("tls") or {}).get("cert"), (config.get("tls") or {}).get("key")) if p]:
        m, v = mount_for(container, spec, path)
        assert "secret" in v and file_in_volume(m, v, path) in all_secrets[v["secret"]["secretName"]], path

    # --- where it listens: R2GW_LISTEN (env wins over the file) = a container port = the probes' port ---
    listen = env.get("R2GW_LISTEN", config.get("listen", "0.0.0.0:8080"))
    assert listen.startswith("0.0.0.0:") or listen.startswith("[::]:"), \
        f"listen {listen!r}: the kubelet's probes come to the pod IP, not loopback"
    if "listen" in config:
        assert config["listen"] == listen, f"config listen {config['listen']} != R2GW_LISTEN {listen}"
    port = _port_of(listen)
    assert port in [p["containerPort"] for p in container.get("ports", [])], f"{port} is not a container port"
    probes = {k: container.get(k) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    if probes["startupProbe"]:
        assert probes["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind, probe in probes.items():
        if probe:
            assert container_port(container, probe["httpGet"]["port"]) == port, f"{kind} is not on port {port}"
            assert probe["httpGet"].get("scheme", "HTTP") == "HTTP"

    # --- shutdown: a preStop pause, then the drain, both inside the grace period ---
    drain = float(env.get("R2GW_DRAIN_TIMEOUT", config.get("drain_timeout", 30)))
    pre = container.get("lifecycle", {}).get("preStop", {})
    sleep = float(pre["exec"]["command"][-1]) if "exec" in pre else float(pre.get("sleep", {}).get("seconds", 0))
    assert sleep > 0, "no preStop pause before the drain"
    grace = spec.get("terminationGracePeriodSeconds", 30)
    assert grace > drain + sleep, f"terminationGracePeriodSeconds {grace} <= drain {drain} + preStop {sleep}"

    # --- no service-link variables (the gateway rejects unknown R2GW_* names) ---
    assert spec.get("enableServiceLinks") is False

    # --- security ---
    psc = spec.get("securityContext", {})
    csc = container.get("securityContext", {})
    assert csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True
    assert csc.get("runAsUser", psc.get("runAsUser", 10001)) != 0
    assert csc.get("allowPrivilegeEscalation") is False
    assert csc.get("readOnlyRootFilesystem") is True
    assert csc.get("capabilities", {}).get("drop") == ["ALL"]
    assert (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
    assert container.get("resources", {}).get("requests") and container["resources"].get("limits", {}).get("memory")
    # a read-only root needs a writable /tmp
    mount_for(container, spec, "/tmp/x")
    return Wiring(config_text, env, files, secret_mount, config_path)


def load_with_gateway(wiring: Wiring, workdir: Path):
    """``gateway.config.load()`` of the wired config, secret files present, paths moved to ``workdir``."""
    from gateway.config import load

    cfg, env = wiring.materialize(workdir)
    return load(cfg, env)
