"""What a benchmark leaves behind: the facts recorded with the numbers, and the .md, .json and .png files."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import objsync
from objsync.bench import baseline, chart as charts, context, listpoll, peers, report, variants
from objsync.bench.phases import BenchResult
from objsync.bench.seeding import Target

OURS = "objsync"


def described(tool: peers.Tool, env: Mapping[str, str]) -> str:
    """A build of objsync by its own version line and the git revision of the checkout its executable is in."""
    exe = Path(tool.exe[0]).resolve()
    return f"{peers.version(tool, env)} at {context.git_revision(exe.parent)} ({tool.exe[0]})"


def meta(env: Mapping[str, str], tools: Sequence[peers.Tool], missing: Mapping[str, str], target: Target,
         result: BenchResult, started: datetime.datetime) -> dict[str, Any]:
    measured = [r for r in result.runs if r.others_cpu is not None]
    load = context.load_summary([r.load1 for r in result.runs], sum(r.others_cpu for r in measured),
                                sum(r.wall for r in measured))
    verify_modes = sorted({r.check.mode for r in result.runs})
    full = verify_modes == ["full"]
    out = {
        "date": started.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": context.machine(),
        "load": load,
        "files": result.work["cold"].files,
        "bytes": result.work["cold"].bytes,
        "target": (f"local SeaweedFS on loopback ({target.direct_url or target.endpoint_url})" if target.server_pid
                   else f"{target.endpoint_url or 'AWS S3'} bucket {target.bucket}"),
        "requests_source": ("SeaweedFS S3 gateway counter SeaweedFS_s3_request_total for the bucket, "
                            "read before and after each run" if target.metrics_url else "n/a (no metrics page)"),
        "objsync": f"{objsync.__version__} at {context.git_revision(Path(objsync.__file__).parent)}",
        "versions": {t.name: peers.version(t, env) for t in tools if t.kind != "objsync" and t.concurrency is None},
        "missing": dict(missing),
        "verify": ("every path, size and MD5 (full compare)" if full else
                   f"every path and size, MD5 of a seeded sample ({', '.join(verify_modes)})"),
    }
    base = next((t for t in tools if t.name == peers.BASELINE), None)
    if base is not None:
        out["baseline"] = described(base, env)
    return out


def documents(result: BenchResult, info: Mapping[str, Any], ours: Sequence[str], sweep: bool) -> tuple[str, dict]:
    """The Markdown report and the JSON document of one benchmark."""
    text = report.render_markdown(result, info, [] if sweep else ours)
    doc = report.to_json(result, info, ours)
    if sweep:
        text += "\n" + sweep_advice(result)
    if any(peers.variant_of(name)[1] is not None for name in result.tools):
        text += "\n" + variants.section(report.summarize(result), ours)
        doc["concurrency"] = [dataclasses.asdict(p) for p in variants.picks(report.summarize(result))]
    if polled := listpoll.section(result):
        text += "\n" + polled
        doc["list_daemon"] = [dataclasses.asdict(r) for r in listpoll.rows(result)]
    if "baseline" in info and OURS in result.tools:
        text += "\n" + baseline.section(result, OURS, peers.BASELINE, info["baseline"])
        doc["baseline"] = baseline.to_json(result, OURS, peers.BASELINE, info["baseline"])
    return text, doc


def write(out: Path, stem: str, text: str, doc: Mapping[str, Any], result: BenchResult, chart: bool,
          say: Callable[[str], None]) -> list[Path]:
    """Write stem.md, .json and (with matplotlib) .png into `out`, never over an earlier run's files."""
    out.mkdir(parents=True, exist_ok=True)
    base = out / stem
    if base.with_suffix(".json").exists():
        base = out / f"{stem}-{datetime.datetime.now().strftime('%H%M%S')}"
    md, js, png = base.with_suffix(".md"), base.with_suffix(".json"), base.with_suffix(".png")
    md.write_text(text)
    report.write_json(doc, js)
    paths = [md, js]
    if chart:
        if charts.write_chart(result, png):
            paths.append(png)
        else:
            say("no chart: matplotlib is not installed (pip install 'objsync[bench]')")
    return paths


def sweep_advice(result: BenchResult) -> str:
    """The fastest objsync setting for each phase, from the medians."""
    summaries = report.summarize(result)
    lines = ["## Best settings", ""]
    for by, label in (("wall", "fastest"), ("cpu", "least CPU")):
        for s in report.best_per_phase(summaries, by):
            lines.append(f"- {s.phase}, {label}: `objsync pull {s.tool}` ({s.wall.median:.2f} s median, "
                         f"CPU {s.cpu.median:.2f} s)")
    lines += ["", "On a busy machine (see others' CPU) the wall times move with the neighbours; CPU seconds "
                  "move less. Batch size is not an `objsync pull` flag yet, so it is not swept."]
    return "\n".join(lines) + "\n"
