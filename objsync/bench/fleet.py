"""The fleet phase: what one quiet poll costs a puller, in requests and CPU, manifest mode against LIST mode.

A bucket with many repos (100 repos, 100,000 objects by default), each with the manifest that
`objsync push` would write, is pulled once; then a daemon polls it, unchanged, in each mode. The
cost per day scales those figures to a fleet of pods at S3's request prices.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from objsync import __version__
from objsync.bench import context, peers, promtext, seeding
from objsync.bench.measure import become_subreaper, run_measured
from objsync.bench.polls import PollStats, log_passes, measure_polls, metrics_passes
from objsync.bench.presets import KIB, Preset, SeedFile, build_tree, expectations
from objsync.bench.report import markdown_table, num
from objsync.bench.seaweed import HOST, free_port_block
from objsync.bench.seeding import Target
from objsync.layout import history_key, manifest_key
from objsync.manifest import FileEntry, Manifest, now

PHASE = "fleet"
LIST_PRICE = 0.005 / 1000  # USD per LIST (ListObjectsV2) request, S3 Standard
GET_PRICE = 0.0004 / 1000  # USD per GET request
FLEET_PODS = 100
FLEET_INTERVAL = 5.0  # seconds between polls of a production puller
RESCAN_EVERY = 300.0  # the production puller modelled here; the quiet-poll daemon is given the same value
TARGET_REQUESTS, TARGET_CPU = 1.0, 0.020


@dataclass(frozen=True)
class FleetRow:
    """One way of polling the fleet bucket, and what a quiet poll of it cost."""

    name: str
    flags: tuple[str, ...]
    stats: PollStats
    note: str = ""

    @property
    def requests(self) -> float | None:
        return self.stats.requests_per_poll

    def list_requests_per_day(self, pods: int = FLEET_PODS, interval: float = FLEET_INTERVAL) -> float | None:
        if self.requests is None:
            return None
        return self.requests * pods * 86_400 / interval


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of the fleet phase (`objsync bench --phases fleet`)."""
    p.add_argument("--fleet-repos", type=int, default=100, help="fleet phase: repos in the bucket (default 100)")
    p.add_argument("--fleet-files", type=int, default=100_000,
                   help="fleet phase: objects over all repos (default 100,000)")


def fleet_preset(repos: int, files: int) -> Preset:
    """Small DAG-like files (0.2 to 8 KiB) spread over `repos` repos."""
    return Preset(PHASE, files, repos=repos, max_size=8 * KIB)


def manifests(files: Sequence[SeedFile], seed: int) -> dict[str, Manifest]:
    """The manifest `objsync push` would write for each top-level folder of the tree."""
    sums = expectations(files, seed)
    by_repo: dict[str, list[FileEntry]] = {}
    for f in files:
        repo, _, path = f.rel.partition("/")
        md5 = sums[f.rel].md5
        by_repo.setdefault(repo, []).append(FileEntry(path, f.size, md5, md5))
    return {repo: Manifest(repo, tuple(entries), None, now(), __version__) for repo, entries in by_repo.items()}


def cost_per_day(requests_per_poll: float, pods: int = FLEET_PODS, interval: float = FLEET_INTERVAL,
                 price: float = LIST_PRICE) -> float:
    """USD per day for `pods` pullers polling every `interval` seconds."""
    return requests_per_poll * pods * 86_400 / interval * price


def amortized(quiet: float, rescan: float, interval: float = FLEET_INTERVAL, every: float = RESCAN_EVERY) -> float:
    """The mean per poll when one poll in every `every / interval` is a rescan."""
    share = min(1.0, interval / every)
    return quiet * (1 - share) + rescan * share


def run(args: argparse.Namespace, env: Mapping[str, str], say: Callable[[str], None]) -> int:
    """Seed the fleet bucket, measure each way of polling it, and write the results."""
    from objsync.bench.server import local_seaweed

    become_subreaper()
    workdir = Path(tempfile.mkdtemp(prefix="objsync-fleet-")) if not args.workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = (args.prefix or f"objsync-bench/fleet-{args.seed}-{uuid.uuid4().hex[:8]}/").lstrip("/")
    prefix += "" if prefix.endswith("/") else "/"
    started = datetime.datetime.now().astimezone()
    try:
        if args.bucket:
            endpoint = args.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
            target = Target(endpoint, args.bucket, prefix, env={}, metrics_url=args.metrics_url)
            rows, seeded = _fleet(args, env, target, workdir, say, clean=True)
        else:
            say("starting a local SeaweedFS on loopback")
            with local_seaweed(workdir / "server") as (server, metrics_url):
                target = Target(server.endpoint_url, "objsync-fleet", prefix, env=server.env(),
                                metrics_url=metrics_url, server_pid=server.pid)
                seeding.make_client(target).create_bucket(Bucket=target.bucket)
                rows, seeded = _fleet(args, env, target, workdir, say, clean=False)
    finally:
        if not (args.keep_logs or args.workdir):
            shutil.rmtree(workdir, ignore_errors=True)
    text = render(rows, seeded | {"date": started.strftime("%Y-%m-%d %H:%M %Z"), "machine": context.machine(),
                                  "objsync": f"{__version__} at {context.git_revision(Path(__file__).parent)}"})
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"fleet-{datetime.date.today().isoformat()}"
    stem.with_suffix(".md").write_text(text)
    stem.with_suffix(".json").write_text(json.dumps(
        {"meta": seeded, "rows": [asdict(r) | {"cost_per_day": _cost(r)} for r in rows]}, indent=1, default=str))
    sys.stdout.write(text)
    say(f"results: {stem.with_suffix('.md')}, {stem.with_suffix('.json')}")
    return 0 if all(r.stats.status in ("ok", "skipped") for r in rows) else 1


def _fleet(args, env, target: Target, workdir: Path, say, *, clean: bool) -> tuple[list[FleetRow], dict]:
    client = seeding.make_client(target)
    files = build_tree(fleet_preset(args.fleet_repos, args.fleet_files), args.seed)
    t0 = time.monotonic()
    seeding.upload(client, target, files, args.seed)
    written = manifests(files, args.seed)
    for repo, m in written.items():
        body = m.to_json()
        for key in (history_key(target.prefix, repo, m.id), manifest_key(target.prefix, repo)):
            client.put_object(Bucket=target.bucket, Key=key, Body=body, ContentType="application/json")
    seed_seconds = time.monotonic() - t0
    say(f"seeded {len(files):,} objects in {len(written)} repos, with their manifests, in {seed_seconds:.0f} s")
    try:
        return _measure_all(args, env, target, workdir, say), {
            "objects": len(files), "repos": len(written), "bytes": sum(f.size for f in files),
            "seed_seconds": round(seed_seconds, 1), "interval": args.daemon_interval, "polls": args.daemon_polls,
            "requests_source": "SeaweedFS_s3_request_total" if target.metrics_url else None}
    finally:
        if clean:
            keys = [f.rel for f in files] + [k[len(target.prefix):] for r, m in written.items()
                                             for k in (history_key(target.prefix, r, m.id),
                                                       manifest_key(target.prefix, r))]
            seeding.delete(client, target, keys)


def _measure_all(args, env, target: Target, workdir: Path, say) -> list[FleetRow]:
    tool = peers.objsync_tool()
    tool_env = peers.tool_env(tool, env, target.env, target.endpoint_url)
    dest = workdir / "dest"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = peers.sync_command(tool, target.uri, target.endpoint_url, dest)
    usage = run_measured(argv, tool_env, stdout=logs / "cold.out", stderr=logs / "cold.err", timeout=args.run_timeout)
    if usage.rc != 0:
        raise RuntimeError(f"the first pull failed (exit {usage.rc}); see {logs / 'cold.err'}")
    say(f"first pull: {usage.wall:.1f} s, {usage.cpu:.1f} s CPU")

    def requests() -> int | None:
        try:
            return promtext.s3_requests(target.metrics_url, target.bucket)
        except (OSError, ValueError):
            return None

    # (name, flags, share of --daemon-polls): a pass that lists and plans every object takes seconds, so
    # fewer of those are measured, and the harness is told to expect them slower than the interval.
    ways = [("objsync, manifest mode (quiet poll)", ("--rescan-every", f"{RESCAN_EVERY:g}s"), 1.0),
            ("objsync, manifest mode (rescan poll)", ("--rescan-every", "1ms"), 0.5),
            ("objsync, LIST mode", ("--ignore-manifests",), 0.25)]
    rows = []
    interval = f"{round(args.daemon_interval * 1000)}ms"
    for name, flags, share in ways:
        status_addr = f"{HOST}:{free_port_block()}"
        daemon = peers.daemon_command(peers.objsync_tool(flags), target.uri, target.endpoint_url, dest, interval,
                                      status_addr)
        polls = max(3, round(args.daemon_polls * share))
        expected = args.daemon_interval if share == 1.0 else max(args.daemon_interval, args.fleet_files / 20_000)
        stats = measure_polls(daemon, tool_env, metrics_passes(f"http://{status_addr}/metrics"), polls, expected,
                              stderr=logs / f"{name.split(',')[1].strip()}.err", requests=requests)
        rows.append(FleetRow(name, flags, stats))
        say(f"{name}: {_describe(stats)}")
    rows.append(_objinsync(args, env, target, workdir, requests, say))
    return rows


def _objinsync(args, env, target: Target, workdir: Path, requests, say) -> FleetRow:
    """objinsync's daemon in its only mode, LIST; its passes are counted in its log."""
    exe = env.get("OBJINSYNC_BIN")
    name = "objinsync"
    if not exe or not os.access(exe, os.X_OK):
        return FleetRow(name, (), PollStats("skipped", "OBJINSYNC_BIN is not set to an executable"))
    tool = peers.Tool(name, "objinsync", (exe,))
    stderr, dest = workdir / "logs" / "objinsync.err", workdir / "dest-objinsync"
    dest.mkdir(parents=True, exist_ok=True)  # objinsync refuses a destination that does not exist
    argv = peers.daemon_command(tool, target.uri, target.endpoint_url, dest,
                                f"{round(args.daemon_interval * 1000)}ms", f"{HOST}:{free_port_block()}")
    # Its first pass downloads the whole fleet, so it gets as long as a one-shot run may take.
    stats = measure_polls(argv, peers.tool_env(tool, env, target.env, target.endpoint_url), log_passes(stderr),
                          max(3, round(args.daemon_polls * 0.25)), max(args.daemon_interval, args.fleet_files / 20_000),
                          stderr=stderr, requests=requests, warm_up=args.run_timeout)
    say(f"{name}: {_describe(stats)}")
    return FleetRow(name, (), stats, note="passes counted by the line objinsync logs after each one")


def _describe(s: PollStats) -> str:
    if s.status != "ok":
        return f"{s.status}: {s.reason}"
    return (f"{s.polls} polls, {num(s.requests_per_poll)} requests and {num((s.cpu_per_poll or 0) * 1000, 1)} ms "
            f"CPU per poll")


def _cost(row: FleetRow) -> float | None:
    return None if row.requests is None else round(cost_per_day(row.requests), 2)


def render(rows: Sequence[FleetRow], meta: Mapping) -> str:
    """The fleet section: per-poll figures, the rescan-amortized mean, and the cost per day of a fleet."""
    lines = [f"# objsync bench: fleet phase, {meta.get('date', '')}", "",
             f"- bucket: {meta['objects']:,} objects in {meta['repos']} repos ({meta['bytes'] / 2**20:,.1f} MiB), "
             f"each repo with its manifest; seeded in {meta['seed_seconds']} s",
             f"- machine: {meta.get('machine', 'n/a')}; objsync {meta.get('objsync', '')}",
             f"- each way: a daemon polls the unchanged bucket every {num(meta['interval'], 1)} s after its first "
             f"pass, and the polls in the table are measured; requests: "
             + (f"{meta['requests_source']} of the S3 server" if meta.get("requests_source") else "n/a"),
             "- CPU: user + system of the daemon's whole process tree over the measured polls",
             f"- cost: {FLEET_PODS} pods polling every {FLEET_INTERVAL:g} s "
             f"({FLEET_PODS * 86_400 / FLEET_INTERVAL:,.0f} polls a day); a quiet poll sends only LIST requests, "
             f"${LIST_PRICE * 1000:g} per 1,000 (GET: ${GET_PRICE * 1000:g} per 1,000, only when something changed)",
             ""]
    table = []
    for r in rows:
        s = r.stats
        if s.status != "ok":
            table.append([r.name, "-", "-", "-", "-", "-", f"not run: {s.reason}"])
            continue
        per_day = r.list_requests_per_day()
        table.append([r.name, str(s.polls), num(r.requests), num((s.cpu_per_poll or 0) * 1000, 1),
                      num(s.peak_rss / 2**20, 0), f"{per_day:,.0f}" if per_day is not None else "n/a",
                      f"${cost_per_day(r.requests):,.2f}" if r.requests is not None else "n/a"])
    lines.append(markdown_table(["way", "polls", "requests/poll", "CPU ms/poll", "peak RSS MiB",
                                 "LIST requests/day (fleet)", "cost/day (fleet)"], table,
                                right=[False, True, True, True, True, True, True]))
    quiet = next((r for r in rows if r.name.endswith("(quiet poll)") and r.stats.status == "ok"), None)
    rescan = next((r for r in rows if r.name.endswith("(rescan poll)") and r.stats.status == "ok"), None)
    if quiet and rescan and quiet.requests is not None and rescan.requests is not None:
        req = amortized(quiet.requests, rescan.requests)
        cpu = amortized(quiet.stats.cpu_per_poll, rescan.stats.cpu_per_poll)
        lines += ["", f"With `--rescan-every {RESCAN_EVERY / 60:g}m` at a {FLEET_INTERVAL:g} s interval, "
                      f"one poll in {RESCAN_EVERY / FLEET_INTERVAL:.0f} is a rescan: on average "
                      f"{req:.3f} requests and {cpu * 1000:.1f} ms CPU per poll, ${cost_per_day(req):,.2f} a day for "
                      f"the fleet. Target: {TARGET_REQUESTS:g} request and {TARGET_CPU * 1000:g} ms per quiet poll: "
                      f"{'met' if quiet.requests <= TARGET_REQUESTS and quiet.stats.cpu_per_poll <= TARGET_CPU else 'NOT met'}."]
    notes = [f"- {r.name}: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"
