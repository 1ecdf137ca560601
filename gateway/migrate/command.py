"""``r2-gateway migrate``: from parsed arguments to a finished run and its exit status.

Exit status: 0 every object is done and none failed · 1 some failed (or the run could not go on) ·
2 the command line or the config is unusable · 3 stopped by SIGTERM / SIGINT before the end (run
it again to finish).
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from contextlib import ExitStack

import orjson

from .. import config
from ..routing import Routes
from . import progress as progress_mod
from .engine import Job, Migration, MigrationError
from .plan import Shard
from .report import Recorder, human_summary

_SIZE = re.compile(r"(?i)\s*([0-9]+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*")
_UNITS = {None: 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
          "g": 2**30, "gb": 2**30, "gib": 2**30}


class UsageError(Exception):
    pass


def parse_size(text: str) -> int:
    m = _SIZE.fullmatch(text)
    if not m:
        raise UsageError(f"not a size: {text!r} (e.g. 16MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower() if m.group(2) else None]


def _store_bucket(text: str, flag: str) -> tuple[str, str]:
    store, sep, bucket = text.partition("/")
    if not sep or not store or not bucket or "/" in bucket:
        raise UsageError(f"{flag} takes STORE/BUCKET (e.g. default/media), got {text!r}")
    return store, bucket


def build_job(settings: config.Settings, args) -> Job:
    """The job the arguments describe, its stores resolved against the config."""
    if args.bucket:
        if args.source or args.to:
            raise UsageError("give either --bucket or --from/--to")
        route = Routes(settings.buckets).for_bucket(args.bucket)
        if not route.migrates:
            raise UsageError(f"bucket {args.bucket!r}: no `buckets` rule with migrate_from matches it "
                             "(or name the stores: --from STORE/BUCKET --to STORE/BUCKET)")
        src, src_bucket, dst, dst_bucket = route.source_store, route.source_bucket, route.store, args.bucket
    elif args.source and args.to:
        (src, src_bucket), (dst, dst_bucket) = _store_bucket(args.source, "--from"), _store_bucket(args.to, "--to")
    else:
        raise UsageError("give --bucket NAME (its migrate_from rule) or --from STORE/BUCKET --to STORE/BUCKET")
    if (src, src_bucket) == (dst, dst_bucket):
        raise UsageError("the source is the destination")
    if args.keys_from and args.delete_extra:
        raise UsageError("--delete-extra compares whole listings: it does not go with --keys-from")
    if args.keys_from and args.prefix:
        raise UsageError("--prefix filters a listing: it does not go with --keys-from")
    try:
        shard = Shard.parse(args.shard) if args.shard else Shard()
    except ValueError as e:
        raise UsageError(str(e)) from None
    part, threshold = parse_size(args.part_size), parse_size(args.multipart_threshold)
    if part < 5 * 2**20 or part > 5 * 2**30:
        raise UsageError("--part-size must be between 5 MiB and 5 GiB (S3's limits)")
    if threshold > 5 * 2**30:
        raise UsageError("--multipart-threshold may not exceed 5 GiB (the largest single PUT)")
    if args.concurrency < 1 or args.part_concurrency < 1:
        raise UsageError("--concurrency and --part-concurrency must be at least 1")
    return Job(src, src_bucket, dst, dst_bucket, prefix=args.prefix or "", keys_from=args.keys_from,
               concurrency=args.concurrency, shard=shard, dry_run=args.dry_run, delete_extra=args.delete_extra,
               part_size=part, threshold=max(threshold, 1), part_concurrency=args.part_concurrency,
               reread=args.verify == "reread", retries=args.retries)


def run(args) -> int:
    try:
        settings = config.load(args.config)
        job = build_job(settings, args)
    except (config.ConfigError, UsageError) as e:
        print(f"r2-gateway migrate: {e}", file=sys.stderr)
        return 2
    if any(_uses_aws_chain(settings, name) for name in (job.source, job.destination)):
        # the credential chain says what it found (JSON lines): on stderr, stdout is the summary's
        from ..observability import configure_logging
        configure_logging(settings.log_level)
    with ExitStack() as stack:
        try:
            report = stack.enter_context(open(args.report, "wb")) if args.report else None
        except OSError as e:
            print(f"r2-gateway migrate: --report {args.report}: {e.strerror}", file=sys.stderr)
            return 2
        recorder = Recorder(report)
        try:
            migration = Migration(settings, job, recorder)
        except ValueError as e:
            print(f"r2-gateway migrate: {e}", file=sys.stderr)
            return 2
        metrics = None
        if args.metrics_listen:
            from .metrics import Metrics   # prometheus-client only when asked for
            metrics = Metrics(recorder.tally)
            try:
                metrics.serve(args.metrics_listen)
            except (OSError, ValueError) as e:
                print(f"r2-gateway migrate: --metrics-listen {args.metrics_listen}: {e}", file=sys.stderr)
                return 2
            stack.callback(metrics.close)
            recorder.listeners.append(metrics.on_result)
        title = f"{job.source_name} → {job.destination_name}"
        shown = progress_mod.make(args.progress, recorder.tally, title, args.progress_interval)
        recorder.listeners.append(shown.on_result)
        error, stopped = _loop_run(migration, shown)
        summary = recorder.summary(source=job.source_name, destination=job.destination_name, prefix=job.prefix,
                                   shard=str(job.shard), dry_run=job.dry_run, stopped=stopped,
                                   report=args.report, **({"error": error} if error else {}))
        print(human_summary(summary, recorder.tally.failures), file=sys.stderr)
        if error:
            print(f"r2-gateway migrate: {error}", file=sys.stderr)
        _write_summary(orjson.dumps(summary).decode() + "\n")
    if stopped:
        return 3
    return 1 if error or summary["failed"] else 0


def _uses_aws_chain(settings, name: str) -> bool:
    try:
        return settings.store(name).uses_aws_chain
    except KeyError:        # an unknown store: Migration says so
        return False


def _write_summary(line: str) -> None:
    """The JSON summary on stdout. A reader that went away (``| head -c0``) is not an error of the
    copy (the summary is on stderr too, the exit status says the rest): stdout becomes /dev/null,
    so that nothing writes to the broken pipe again."""
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _loop_run(migration: Migration, shown) -> tuple[str | None, bool]:
    """Run the migration on an event loop; SIGTERM / SIGINT cancel it. → (fatal error, stopped)."""
    state = {"error": None, "stopped": False}

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def stop() -> None:
            state["stopped"] = True
            task.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        shown.start()
        try:
            await migration.run()
        except asyncio.CancelledError:
            if not state["stopped"]:
                raise
        except MigrationError as e:
            state["error"] = str(e)
        finally:
            shown.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    runner(main())
    return state["error"], state["stopped"]
