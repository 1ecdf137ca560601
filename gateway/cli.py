"""``r2-gateway``: serve · compat · check-config · migrate."""
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
    configure_logging(settings.log_level, access_flush_seconds=settings.access_log_flush_seconds)
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
    try:
        return runner(serve(settings, reuse_port=reuse_port, quiet=quiet))
    except EmbeddedUnavailable as e:
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
                code = _serve_one(settings, reuse_port=True, quiet=i > 0)
            finally:
                os._exit(code)
        children.append(pid)

    def forward(signum, _frame):
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
        code = code or os.waitstatus_to_exitcode(status)
    return code


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
          f"{settings.upstream.endpoint or 'embedded'})")
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
    m.set_defaults(func=_run_migrate)


def main(argv: list[str] | None = None) -> int:
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
    _migrate_parser(sub)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
