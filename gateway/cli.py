"""``r2-gateway``: serve · compat · check-config · report · credentials mint · migrate."""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from . import config


def _run_serve(args) -> int:
    try:
        settings = config.load(args.config)
    except config.ConfigError as e:
        print(f"r2-gateway: {e}", file=sys.stderr)
        return 2
    if args.workers is not None:
        settings = settings.model_copy(update={"workers": args.workers})
    from .observability import configure_logging
    configure_logging(settings.log_level, access_flush_seconds=settings.access_log_flush_seconds,
                      access_shape=settings.access_log_format)
    if settings.workers > 1:
        return _run_workers(settings)
    return _serve_one(settings)


def _serve_one(settings, reuse_port: bool = False, quiet: bool = False) -> int:
    try:
        import uvloop  # the faster event loop, where it is installed
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    from .app import serve
    from .embedded import EmbeddedUnavailable
    from .upstream.credentials import CredentialsUnavailable
    try:
        return runner(serve(settings, reuse_port=reuse_port, quiet=quiet))
    except (EmbeddedUnavailable, CredentialsUnavailable) as e:
        print(f"r2-gateway: {e}", file=sys.stderr)
        return 2


def _run_workers(settings) -> int:
    """N processes on one port (SO_REUSEPORT); the parent forwards SIGTERM and waits for all."""
    if settings.upstream.endpoint is None:
        print("r2-gateway: --workers needs a configured upstream (the embedded one is per process)",
              file=sys.stderr)
        return 2
    children = []
    for i in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _serve_one(_worker_settings(settings, i), reuse_port=True, quiet=i > 0)
            finally:
                os._exit(code)
        children.append(pid)

    asked: set[int] = set()

    def forward(signum, _frame):
        asked.add(signum)
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for pid in children:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        rc = os.waitstatus_to_exitcode(status)
        if rc < 0 and -rc in asked:
            rc = 0   # stopped by the signal it was sent before its own handler was in place (starting)
        code = code or rc
    return code


def _worker_settings(settings, i: int):
    """Worker ``i``'s settings: its own readiness state file (``<state_file>.<i>``)."""
    report = settings.report
    if report.state_file is None:
        return settings
    own = report.model_copy(update={"state_file": report.state_file.with_name(f"{report.state_file.name}.{i}")})
    return settings.model_copy(update={"report": own})


def _run_check(args) -> int:
    if args.env:
        for name, path in sorted(config.env_names().items()):
            print(f"{name}\t{'.'.join(path)}")
        return 0
    try:
        settings = config.load(args.path)
        from .rules.profile import load_profile
        load_profile(settings.profile).with_storage_class_map(settings.storage_class_map)
    except config.ConfigError as e:
        print(f"r2-gateway: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a profile that does not load
        print(f"r2-gateway: profile: {e}", file=sys.stderr)
        return 1
    print(f"ok: {args.path or '(environment only)'} (profile {settings.profile}, mode {settings.mode}, "
          f"{len(settings.client_keys())} client key(s), upstream "
          f"{settings.upstream.endpoint or 'embedded'}"
          + (f", {len(settings.upstreams)} more store(s), {len(settings.buckets)} bucket rule(s)"
             if settings.upstreams or settings.buckets else "") + ")")
    for warning in settings.shared_internal_buckets():
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _run_compat(args) -> int:
    from .rules.profile import load_profile
    from .rules.render import render_json, render_markdown
    name = args.profile
    if name is None:
        try:
            name = config.load(args.config).profile
        except config.ConfigError as e:
            print(f"r2-gateway: {e}", file=sys.stderr)
            return 2
    profile = load_profile(name)
    sys.stdout.write(render_markdown(profile) if args.format == "markdown" else render_json(profile))
    return 0


def _run_report(args) -> int:
    """The readiness report from access logs, as the live /report would show it."""
    from .report.offline import from_lines
    from .report.render import document, html
    from .rules.profile import ProfileError, load_profile
    try:
        settings = config.load(args.config) if args.config else None
        profile = load_profile(args.profile or (settings.profile if settings else "r2"))
    except (config.ConfigError, ProfileError) as e:
        print(f"r2-gateway: {e}", file=sys.stderr)
        return 2
    findings, records = None, 0
    max_rows = settings.report.max_rows if settings else 2000
    for path in args.source:
        try:
            f = sys.stdin.buffer if path == "-" else open(path, "rb")
        except OSError as e:
            print(f"r2-gateway: {path}: {e.strerror}", file=sys.stderr)
            return 2
        with f:
            found, n = from_lines(f, profile, max_rows)
        records += n
        if findings is None:
            findings = found
        else:
            findings.merge(found)
    if not records:
        print(f"r2-gateway: no access record in {', '.join(args.source)}", file=sys.stderr)
        return 1
    doc = document(findings, profile, mode=settings.mode if settings else "unknown", source="access-log")
    doc["records"] = records
    if args.format == "json":
        import orjson
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.buffer.write(html(doc))
    sys.stdout.flush()
    return 0


def _run_mint(args) -> int:
    """Temporary credentials of a configured key, by R2's algorithm (gateway/auth/temporary.py)."""
    from .auth.keys import Key
    from .auth.temporary import mint
    try:
        settings = config.load(args.config)
    except config.ConfigError as e:
        print(f"r2-gateway: {e}", file=sys.stderr)
        return 2
    found = [k for k in settings.client_keys() if k.access_key_id == args.parent]
    if not found:
        print(f"r2-gateway: no configured key has the access key id {args.parent!r}", file=sys.stderr)
        return 2
    k = found[0]
    parent = Key(k.access_key_id, k.secret_access_key.get_secret_value(), k.permission,
                 frozenset(k.buckets) if k.buckets is not None else None)
    tc = settings.temporary_credentials
    audiences = [a.lower() for a in args.audience] if args.audience else tc.audiences
    if not audiences:
        print("r2-gateway: give --audience (the gateway's host[:port] as clients reach it) or configure "
              "temporary_credentials.audiences", file=sys.stderr)
        return 2
    actions = [a for group in args.actions for a in group.split(",") if a] if args.actions else None
    try:
        minted = mint(parent, bucket=args.bucket, scope=args.scope, ttl_seconds=args.ttl,
                      audience=audiences[0] if len(audiences) == 1 else audiences,
                      account_id=args.account_id or tc.account_id or "r2-gateway", actions=actions,
                      prefixes=args.prefix, objects=args.object)
    except ValueError as e:
        print(f"r2-gateway: {e}", file=sys.stderr)
        return 2
    import json
    import time
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minted.expires_at))
    if args.format == "json":
        print(json.dumps({"accessKeyId": minted.access_key_id, "secretAccessKey": minted.secret_access_key,
                          "sessionToken": minted.session_token, "expiration": expires}, indent=2))
    elif args.format == "env":
        print(f"AWS_ACCESS_KEY_ID={minted.access_key_id}\nAWS_SECRET_ACCESS_KEY={minted.secret_access_key}\n"
              f"AWS_SESSION_TOKEN={minted.session_token}")
    else:
        print(f"access key id:     {minted.access_key_id}\nsecret access key: {minted.secret_access_key}\n"
              f"session token:     {minted.session_token}\nexpires:           {expires}")
    return 0


def _run_migrate(args) -> int:
    from .migrate.command import run
    return run(args)


def _migrate_parser(sub) -> None:
    m = sub.add_parser("migrate", help="copy a bucket from one configured store to another (bulk, resumable)",
                       description="Copy what the destination lacks or holds with other content; see docs/migration.md.")
    m.add_argument("--config", "-c", help="YAML config file naming the stores (R2GW_* variables override it)")
    m.add_argument("--bucket", help="a bucket whose `buckets` rule has migrate_from: copy from that source")
    m.add_argument("--from", dest="source", metavar="STORE/BUCKET", help="the source (store: default or a key of upstreams)")
    m.add_argument("--to", metavar="STORE/BUCKET", help="the destination")
    m.add_argument("--prefix", default="", help="only keys starting with this")
    m.add_argument("--keys-from", metavar="FILE", help="only these keys (one per line) instead of a listing")
    m.add_argument("--concurrency", type=int, default=16, help="objects copied at once (16)")
    m.add_argument("--shard", metavar="I/N", help="only the keys whose SHA-256 falls in shard I of N")
    m.add_argument("--dry-run", action="store_true", help="report what would be copied or deleted; write nothing")
    m.add_argument("--delete-extra", action="store_true", help="delete destination objects the source lacks")
    m.add_argument("--report", metavar="FILE", help="per-object report (JSON lines)")
    m.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve Prometheus metrics while running")
    m.add_argument("--part-size", default="16MiB", help="multipart part size (16MiB)")
    m.add_argument("--multipart-threshold", default="200MiB", help="objects this large or larger go in parts (200MiB)")
    m.add_argument("--part-concurrency", type=int, default=8,
                   help="part buffers alive at once, over all copies: memory is about this × part size (8)")
    m.add_argument("--verify", choices=("auto", "reread"), default="auto",
                   help="reread: also read every copy back and compare its CRC32")
    m.add_argument("--retries", type=int, default=3, help="tries again after a transient error (3)")
    m.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto",
                   help="auto: a live bar on a terminal, else JSON lines on stderr")
    m.add_argument("--progress-interval", type=float, default=5.0, help="seconds between JSON progress lines (5)")
    m.set_defaults(func=_run_migrate, quick_exit=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    return args.func(args)


def run() -> None:
    """The process's entry point (``r2-gateway``, ``python -m gateway``). A command that has closed
    everything it wrote (``quick_exit``: migrate) ends without the interpreter's teardown, which
    frees every module one by one: about 0.1 s of a bulk copy's fixed cost."""
    args = _parse(None)
    code = args.func(args)
    if getattr(args, "quick_exit", False):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):   # a reader that went away (or a closed stream)
                code = code or 1
        os._exit(code)
    sys.exit(code)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="r2-gateway", description="Cloudflare R2's S3 dialect in front of any S3 store")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the gateway")
    s.add_argument("--config", "-c", help="YAML config file (R2GW_* environment variables override it)")
    s.add_argument("--workers", type=int, help="processes sharing the port (SO_REUSEPORT)")
    s.set_defaults(func=_run_serve)
    c = sub.add_parser("check-config", help="validate a config file (and the environment) without starting")
    c.add_argument("path", nargs="?")
    c.add_argument("--env", action="store_true", help="list every R2GW_* environment variable")
    c.set_defaults(func=_run_check)
    k = sub.add_parser("compat", help="print the compatibility table being enforced")
    k.add_argument("--profile", help="profile name or path (default: the configured one)")
    k.add_argument("--config", "-c")
    k.add_argument("--format", choices=("markdown", "json"), default="markdown")
    k.set_defaults(func=_run_compat)
    r = sub.add_parser("report", help="the readiness report (will my app work on R2?) from access logs")
    r.add_argument("--from", dest="source", action="append", required=True, metavar="ACCESS_LOG",
                   help="a gateway log file (repeatable; - reads standard input)")
    r.add_argument("--format", choices=("html", "json"), default="html")
    r.add_argument("--profile", help="profile name or path (default: the configured one, else r2)")
    r.add_argument("--config", "-c", help="the gateway's config (profile, mode, report.max_rows)")
    r.set_defaults(func=_run_report)
    cred = sub.add_parser("credentials", help="R2's temporary credentials").add_subparsers(dest="action",
                                                                                       required=True)
    m = cred.add_parser("mint", help="print temporary credentials of a configured key (R2's algorithm)")
    m.add_argument("--config", "-c", help="YAML config file holding the parent key (R2GW_* apply too)")
    m.add_argument("--parent", required=True, help="the parent key's access key id")
    m.add_argument("--bucket", required=True, help="the one bucket the credentials reach")
    m.add_argument("--scope", required=True, choices=("object-read-only", "object-read-write",
                                                       "admin-read-only", "admin-read-write"))
    m.add_argument("--actions", action="append", metavar="OP[,OP...]",
                   help="only these S3 operations (R2's names, e.g. GetObject,HeadObject); repeatable")
    m.add_argument("--prefix", action="append", help="only keys under this prefix; repeatable")
    m.add_argument("--object", action="append", help="only this exact key; repeatable")
    m.add_argument("--ttl", required=True, type=int, metavar="SECONDS", help="lifetime, at most 604800")
    m.add_argument("--audience", action="append", metavar="HOST[:PORT]",
                   help="the gateway's host as clients reach it (default: temporary_credentials.audiences)")
    m.add_argument("--account-id", help="the token's sub (default: temporary_credentials.account_id)")
    m.add_argument("--format", choices=("text", "env", "json"), default="text")
    m.set_defaults(func=_run_mint)
    _migrate_parser(sub)
    return p.parse_args(argv)


if __name__ == "__main__":  # pragma: no cover
    run()
