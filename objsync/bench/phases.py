"""The benchmark itself: seed the bucket, then run every phase for every tool, interleaved and repeated."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import psutil

from objsync.bench import context, peers, promtext, seeding
from objsync.bench.measure import run_measured
from objsync.bench.peers import Tool
from objsync.bench.polls import PollStats, last_message, log_passes, measure_polls, metrics_passes
from objsync.bench.presets import Expect, Mutation, Preset, SeedFile, apply, build_tree, expectations, mutate
from objsync.bench.seaweed import HOST, free_port_block
from objsync.bench.seeding import Target
from objsync.bench.verify import Check, check_dest

PHASES = ("cold", "noop", "incremental", "daemon", "list-daemon")
DAEMON_PHASES = ("daemon", "list-daemon")
PHASE_TITLES = {"cold": "cold (empty destination)", "noop": "restart no-op (--once, up to date)",
                "incremental": "incremental (1 % changed, 0.5 % added, 0.5 % deleted)",
                "daemon": "daemon no-op poll",
                "list-daemon": "LIST-mode daemon, quiet polls (objsync --ignore-manifests beside objinsync)"}
PEER_POLL_NOTE = "no daemon mode: one no-op sync"
# The daemons that poll by listing the whole prefix, and the flags that make each one do so.
LIST_DAEMONS = {"objsync": ("--ignore-manifests",), "objinsync": ()}


@dataclass(frozen=True)
class BenchPlan:
    """What to run: the tree, the phases, how often, and the daemon's polling."""

    preset: Preset
    seed: int = 1
    phases: tuple[str, ...] = PHASES
    repeats: int = 3
    tool_repeats: tuple[tuple[str, int], ...] = ()
    daemon_polls: int = 20
    daemon_interval: float = 0.5
    verify: str = "auto"
    run_timeout: float = 1800.0

    def repeats_for(self, tool: Tool) -> int:
        return dict(self.tool_repeats).get(tool.name, dict(self.tool_repeats).get(tool.kind, self.repeats))


@dataclass(frozen=True)
class Work:
    """What a phase asks a tool to move: files written and their bytes, and files deleted."""

    files: int = 0
    bytes: int = 0
    deleted: int = 0


@dataclass(frozen=True)
class RunRecord:
    """One timed run of one tool in one phase."""

    tool: str
    phase: str
    repeat: int
    wall: float
    cpu: float
    peak_rss: int
    requests: int | None
    rc: int
    check: Check
    load1: float
    server_cpu: float | None = None
    others_cpu: float | None = None  # CPU seconds used meanwhile by processes outside the benchmark
    note: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.check.ok


@dataclass(frozen=True)
class DaemonRecord:
    """The daemon phase of one objsync configuration."""

    tool: str
    stats: PollStats
    check: Check | None = None
    load1: float = 0.0
    repeat: int = 0
    phase: str = "daemon"


@dataclass(frozen=True)
class BenchResult:
    """Everything one benchmark produced."""

    plan: BenchPlan
    tools: tuple[str, ...]
    work: Mapping[str, Work]
    runs: tuple[RunRecord, ...]
    daemons: tuple[DaemonRecord, ...] = ()
    seed_seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())


def interleave(tools: Sequence[Tool], repeats_for: Callable[[Tool], int]) -> list[tuple[Tool, int]]:
    """(tool, repeat) in running order: each round visits every tool, starting one further along each time."""
    rounds = max((repeats_for(t) for t in tools), default=0)
    order = []
    for r in range(rounds):
        shift = r % len(tools)
        for tool in [*tools[shift:], *tools[:shift]]:
            if r < repeats_for(tool):
                order.append((tool, r))
    return order


def phase_work(phase: str, files: Sequence[SeedFile], m: Mutation | None) -> Work:
    if phase == "cold":
        return Work(len(files), sum(f.size for f in files))
    if phase == "incremental" and m is not None:
        return Work(len(m.uploads), sum(f.size for f in m.uploads), len(m.deleted))
    return Work()


def slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


class Bench:
    """Runs a BenchPlan against a target in a scratch folder; `say` receives progress: text or records."""

    def __init__(self, plan: BenchPlan, target: Target, tools: Sequence[Tool], workdir: Path,
                 base_env: Mapping[str, str], say: Callable[[object], None]) -> None:
        self.plan, self.target, self.tools, self.workdir = plan, target, list(tools), workdir
        self.base_env, self.say = base_env, say
        self.client = seeding.make_client(target)
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.uploaded: set[str] = set()
        # The server's CPU, and the latency proxy's when there is one: both serve every tool alike.
        self._server = [psutil.Process(pid) for pid in (target.server_pid, target.proxy_pid) if pid]

    # -- helpers ---------------------------------------------------------------

    def dest(self, tool: Tool, r: int) -> Path:
        return self.workdir / "dest" / slug(tool.name) / f"r{r}"

    def requests(self) -> int | None:
        try:
            return promtext.s3_requests(self.target.metrics_url, self.target.bucket)
        except (OSError, ValueError):
            return None

    def server_cpu(self) -> float | None:
        if not self._server:
            return None
        try:
            return sum(t.user + t.system for t in (p.cpu_times() for p in self._server))
        except psutil.Error:
            return None

    def env_for(self, tool: Tool) -> dict[str, str]:
        return peers.tool_env(tool, self.base_env, self.target.env, self.target.endpoint_url)

    # -- the bucket --------------------------------------------------------------

    def seed(self, files: Sequence[SeedFile], model: Mapping[str, Expect]) -> float:
        started = time.monotonic()
        existing = seeding.listing(self.client, self.target)
        if existing:
            raise RuntimeError(f"{self.target.uri} already holds {len(existing)} objects; "
                               "the benchmark needs an empty prefix (choose another with --prefix)")
        self.uploaded.update(f.rel for f in files)
        sent = seeding.upload(self.client, self.target, files, self.plan.seed)
        seeding.check_bucket(self.client, self.target, model)
        seconds = time.monotonic() - started
        self.say(f"seeded {len(files):,} files ({sent / 2**20:,.1f} MiB) into {self.target.uri} in {seconds:.1f} s")
        return seconds

    def mutate(self, m: Mutation, model: Mapping[str, Expect]) -> None:
        self.uploaded.update(f.rel for f in m.added)
        seeding.apply_mutation(self.client, self.target, m, self.plan.seed)
        seeding.check_bucket(self.client, self.target, model)
        self.say(f"bucket edited: {len(m.overwritten)} overwritten, {len(m.added)} added, {len(m.deleted)} deleted")

    def clean_bucket(self) -> None:
        """Remove what the benchmark uploaded, and nothing else."""
        seeding.delete(self.client, self.target, sorted(self.uploaded))
        self.uploaded.clear()

    # -- runs --------------------------------------------------------------------

    def run_one(self, tool: Tool, phase: str, r: int, model: Mapping[str, Expect], note: str = "") -> RunRecord:
        dest = self.dest(tool, r)
        dest.mkdir(parents=True, exist_ok=True)
        env = self.env_for(tool)
        argv = peers.sync_command(tool, self.target.uri, self.target.endpoint_url, dest)
        stem = self.logs / f"{phase}-{slug(tool.name)}-r{r}"
        load1 = os.getloadavg()[0]
        req0, srv0 = self.requests(), self.server_cpu()
        busy0, own0 = context.busy_seconds(), context.own_seconds()
        usage = run_measured(argv, env, stdout=stem.with_suffix(".out"), stderr=stem.with_suffix(".err"),
                             timeout=self.plan.run_timeout)
        busy1, own1 = context.busy_seconds(), context.own_seconds()
        req1, srv1 = self.requests(), self.server_cpu()
        server = srv1 - srv0 if srv0 is not None and srv1 is not None else None
        others = (busy1 - busy0) - usage.cpu - (server or 0.0) - (own1 - own0)
        check = check_dest(dest, model, ignore=tool.ignore, mode=self.plan.verify, seed=self.plan.seed)
        error = "" if usage.rc == 0 else (last_message(stem.with_suffix(".err")) or f"exit status {usage.rc}")
        record = RunRecord(
            tool=tool.name, phase=phase, repeat=r, wall=usage.wall, cpu=usage.cpu, peak_rss=usage.peak_rss,
            requests=req1 - req0 if req0 is not None and req1 is not None else None, rc=usage.rc, check=check,
            load1=load1, server_cpu=server, others_cpu=max(0.0, others), note=note, error=error)
        self.say(record)
        return record

    def run_phase(self, phase: str, model: Mapping[str, Expect]) -> list[RunRecord]:
        self.say(f"--- {PHASE_TITLES.get(phase, phase)}")
        return [self.run_one(tool, phase, r, model) for tool, r in interleave(self.tools, self.plan.repeats_for)]

    def poll_daemon(self, tool: Tool, r: int, phase: str, model: Mapping[str, Expect],
                    flags: tuple[str, ...] = ()) -> DaemonRecord:
        """Run the tool's daemon on the folder its repeat r synced, and measure its quiet polls."""
        dest = self.dest(tool, r)
        status_addr = f"{HOST}:{free_port_block()}"
        argv = peers.daemon_command(dataclasses.replace(tool, extra=(*tool.extra, *flags)), self.target.uri,
                                    self.target.endpoint_url, dest, f"{round(self.plan.daemon_interval * 1000)}ms",
                                    status_addr)
        stderr = self.logs / f"{phase}-{slug(tool.name)}-r{r}.err"
        passes = log_passes(stderr) if tool.kind == "objinsync" else metrics_passes(f"http://{status_addr}/metrics")
        load1 = os.getloadavg()[0]
        stats = measure_polls(argv, self.env_for(tool), passes, self.plan.daemon_polls, self.plan.daemon_interval,
                              stderr=stderr, requests=self.requests)
        check = None
        if stats.status == "ok":
            check = check_dest(dest, model, ignore=tool.ignore, mode=self.plan.verify, seed=self.plan.seed)
        record = DaemonRecord(tool.name, stats, check, load1, r, phase)
        self.say(record)
        return record

    def run_daemon_phase(self, model: Mapping[str, Expect]) -> tuple[list[DaemonRecord], list[RunRecord]]:
        self.say(f"--- {PHASE_TITLES['daemon']}")
        daemons, runs = [], []
        # Repeated and interleaved like the other phases, so that two builds of objsync get a spread here too.
        # A sweep's variants differ in download concurrency only, which a quiet poll does not use.
        for tool, r in interleave([t for t in self.tools if t.concurrency is None], self.plan.repeats_for):
            if tool.has_daemon:
                daemons.append(self.poll_daemon(tool, r, "daemon", model))
            elif r == 0:  # the peer's stand-in is one no-op sync; the noop phase already repeats those
                runs.append(self.run_one(tool, "daemon", 0, model, note=PEER_POLL_NOTE))
        return daemons, runs

    def run_list_daemon_phase(self, model: Mapping[str, Expect]) -> list[DaemonRecord]:
        """objsync in LIST mode and objinsync's daemon, interleaved: the same bucket, interval and polls."""
        self.say(f"--- {PHASE_TITLES['list-daemon']}")
        tools = [t for t in self.tools if t.concurrency is None and t.kind in LIST_DAEMONS]
        return [self.poll_daemon(tool, r, "list-daemon", model, LIST_DAEMONS[tool.kind])
                for tool, r in interleave(tools, self.plan.repeats_for)]

    def run(self) -> BenchResult:
        """Seed the bucket, run the phases, and remove the destinations (the caller cleans the bucket)."""
        p = self.plan
        base = build_tree(p.preset, p.seed)
        model = expectations(base, p.seed)
        seconds = self.seed(base, model)
        runs: list[RunRecord] = []
        daemons: list[DaemonRecord] = []
        m = None
        try:
            cold = self.run_phase("cold", model)
            runs += [r for r in cold if "cold" in p.phases]
            if "noop" in p.phases:
                runs += self.run_phase("noop", model)
            if "incremental" in p.phases:
                m = mutate(base, p.preset, p.seed)
                model = expectations(apply(base, m), p.seed)
                self.mutate(m, model)
                runs += self.run_phase("incremental", model)
            if "daemon" in p.phases:
                d, extra = self.run_daemon_phase(model)
                daemons += d
                runs += extra
            if "list-daemon" in p.phases:
                daemons += self.run_list_daemon_phase(model)
        finally:
            shutil.rmtree(self.workdir / "dest", ignore_errors=True)
        work = {phase: phase_work(phase, base, m) for phase in PHASES}
        return BenchResult(plan=p, tools=tuple(t.name for t in self.tools), work=work, runs=tuple(runs),
                           daemons=tuple(daemons), seed_seconds=seconds)
