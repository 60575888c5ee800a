"""The soak test's verdicts and its printed summary, from the figures `benchmarks/soak.py` gathers."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from objsync.bench.soak import at_a_swap


def _verdicts(result: dict, style: str) -> dict[str, int]:
    out = {"ok": 0, "mixed": 0, "partial": 0}
    for counts in result.get("reads", {}).get("verdicts", {}).get(style, {}).values():
        for k, v in counts.items():
            out[k] = out.get(k, 0) + v
    return out


def swaps(result: dict) -> tuple[int, int]:
    """Mixed reads through the link that a swap between the DAG's open and the helper's explains; and the rest."""
    reads = result.get("reads", {})
    shown = result["trees"]["shown"]
    mixed = [a for a in reads.get("anomalies", []) if a["style"] == "per-file" and a["verdict"] == "mixed"]
    explained = sum(at_a_swap(a["seen"], shown.get(a["repo"], [])) for a in mixed)
    return explained, _verdicts(result, "per-file")["mixed"] - explained


def _check(ok: bool, detail: str) -> dict[str, Any]:
    return {"ok": bool(ok), "detail": detail}


def checks(result: dict, args: Namespace) -> dict[str, dict[str, Any]]:
    """Every hard check by name: whether it held, and the figures behind it."""
    per_file, resolved = _verdicts(result, "per-file"), _verdicts(result, "resolved")
    explained, unexplained = swaps(result)
    reads = sum(per_file.values()) + sum(resolved.values())
    partial = per_file["partial"] + resolved["partial"]
    bad_trees = result["trees"]["bad"]
    left = result["leftovers"]
    stale = sum(len(v) for v in left["stale"].values())
    rss, fds = result["rss_mib"], result["fds"]
    failed_pushes = [f for p in result["pushes"].values() for f in p["failed"]]
    kills_expected = result["pushing_s"] >= 1.5 * args.kill_every
    shown = min(v["shown"] for v in result["versions"].values())
    return {
        "no mixed read, link resolved once": _check(resolved["mixed"] == 0, f"{resolved['mixed']} mixed"),
        # Airflow opens each file through the link: a swap between a DAG's open and its helper's mixes the two.
        # Only that is allowed: the DAG from one tree, the helper from the very next one the folder showed.
        "mixed reads through the link only at a swap": _check(
            unexplained == 0, f"{explained} of {sum(per_file.values())} reads took the DAG from one tree and the "
                              f"helper from the next, {unexplained} mixed otherwise"),
        "no partial or failed read": _check(partial == 0 and not bad_trees,
                                            f"{partial} partial reads, {len(bad_trees)} bad trees"),
        "final folder equals the bucket": _check(result["converged_after_s"] is not None and result["final_equal"],
                                                 f"converged after {result['converged_after_s']} s, "
                                                 f"equal at the end: {result['final_equal']}"),
        "no leftovers": _check(not left["tmp"] and not left["tmp_after_stop"] and stale == 0,
                               f"{len(left['tmp'])} temp files, {len(left['tmp_after_stop'])} after the stop, "
                               f"{stale} stale trees"),
        "RSS flat": _check(rss is not None and rss["growth"] < args.max_rss_growth,
                           "too few samples past warm-up" if rss is None else
                           f"{rss['warm']:.1f} -> {rss['end']:.1f} MiB, growth {rss['growth']:+.2f} MiB"),
        "fds flat": _check(fds is not None and fds["growth"] <= args.max_fd_growth,
                           "too few samples past warm-up" if fds is None else
                           f"{fds['warm']:g} -> {fds['end']:g}, growth {fds['growth']:+g}"),
        "daemon never exited by itself": _check(not result["unexpected_exits"], str(result["unexpected_exits"])),
        "daemon stops cleanly on SIGTERM": _check(result["stop_rc"] == 0, f"exit status {result['stop_rc']}"),
        "every push succeeded": _check(not failed_pushes, "; ".join(failed_pushes[:3])),
        "the soak did its work": _check(result["reader_rc"] == 0 and reads > 0 and shown >= 2
                                        and (result["kills"] > 0 or not kills_expected),
                                        f"reader exit {result['reader_rc']}, {reads} reads, {result['kills']} kills, "
                                        f"at least {shown} versions shown per repo"),
    }


def _fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def summary(result: dict) -> str:
    """A few lines a person reads: what ran, what was seen, and each check."""
    faults = result["faults"]
    injected = sum(faults["injected"].values())
    vis, rss, fds, left = result["visibility_s"], result["rss_mib"], result["fds"], result["leftovers"]
    passes = result["passes"]
    lines = [
        f"Soak under load, {result['date']}, {result['machine']}, objsync {result['revision']}",
        f"  {result['pushing_s'] / 60:.1f} min of pushes every {result['args']['push_every']:g} s: "
        + ", ".join(f"{r} {v['pushed']}" for r, v in result["versions"].items())
        + f"; daemon kill -9'd {result['kills']} times; {injected} of its {faults['requests']} requests faulted "
        f"({', '.join(f'{k} {v}' for k, v in sorted(faults['injected'].items()))}); "
        f"passes {passes.get('ok', 0):.0f} ok, {passes.get('failed', 0):.0f} failed",
    ]
    explained, _ = swaps(result)
    for style, how in (("per-file", "each file opened through the link, as Airflow does"),
                       ("resolved", "the link resolved once per read")):
        v = _verdicts(result, style)
        at_swap = f" ({explained} at a link swap)" if style == "per-file" and v["mixed"] else ""
        lines.append(f"  reads, {how}: {sum(v.values())}, of which {v['mixed']} mixed{at_swap} and "
                     f"{v['partial']} partial")
    for repo, v in result["versions"].items():
        lines.append(f"  {repo}: {v['pushed']} versions pushed, {v['shown']} shown in the folder, "
                     f"{v.get('per-file', 0)} and {v.get('resolved', 0)} read (per-file, resolved)")
    calm, restart = vis.get("no_restart", {}), vis.get("restart", {})
    lines.append(f"  visible after the push returned: median {_fmt(vis['median'], ' s')}, p99 {_fmt(vis['p99'], ' s')}, "
                 f"max {_fmt(vis['max'], ' s')} ({vis['n']} pushes, {vis['never']} never shown); "
                 f"{calm.get('n', 0)} away from a kill: median {_fmt(calm.get('median'), ' s')}, "
                 f"p99 {_fmt(calm.get('p99'), ' s')}; {restart.get('n', 0)} near one (killed while the push waited, "
                 f"or up to 5 s before it): median {_fmt(restart.get('median'), ' s')}, "
                 f"max {_fmt(restart.get('max'), ' s')}")
    if rss is not None:
        lines.append(f"  daemon RSS after warm-up {rss['warm']:.1f} MiB, at the end {rss['end']:.1f} MiB, "
                     f"growth {rss['growth']:+.2f} MiB; largest rise within one life {_fmt(rss['worst_life'], ' MiB')} "
                     f"({rss['lives']} lives past warm-up)")
    if fds is not None:
        lines.append(f"  daemon open fds after warm-up {fds['warm']:g}, at the end {fds['end']:g}, "
                     f"growth {fds['growth']:+g}; largest rise within one life {_fmt(fds['worst_life'], '', 1)}")
    lines.append(f"  left behind: {len(left['tmp'])} temp files ({len(left['tmp_after_stop'])} after the stop), "
                 f"{sum(len(v) for v in left['recent'].values())} recent and "
                 f"{sum(len(v) for v in left['stale'].values())} stale trees beside the current ones")
    lines.append(f"  final folder equals the bucket: {result['final_equal']} "
                 f"(converged {_fmt(result['converged_after_s'], ' s', 1)} after the last push)")
    for name, c in result["checks"].items():
        lines.append(f"  {'PASS' if c['ok'] else 'FAIL'}  {name}: {c['detail']}")
    return "\n".join(lines)
