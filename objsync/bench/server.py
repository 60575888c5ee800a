"""A local SeaweedFS for the benchmark, with its Prometheus port open so requests can be counted."""

from __future__ import annotations

import contextlib
import logging
import shlex
from pathlib import Path
from typing import Iterator

from objsync.bench import promtext
from objsync.bench.seaweed import HOST, SeaweedFS, find_weed, free_port_block

log = logging.getLogger(__name__)


def weed_with_metrics(workdir: Path, weed: str, port: int) -> Path:
    """A launcher that runs `weed` with `-metricsPort` added, for SeaweedFS(weed=...)."""
    launcher = workdir / "weed-with-metrics"
    launcher.write_text(f"#!/bin/sh\nexec {shlex.quote(weed)} \"$@\" -metricsPort={port}\n")
    launcher.chmod(0o755)
    return launcher


@contextlib.contextmanager
def local_seaweed(workdir: Path) -> Iterator[tuple[SeaweedFS, str | None]]:
    """Start SeaweedFS on loopback; yield it with its metrics URL (None when the page does not answer)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port_block()
    server = SeaweedFS(workdir / "seaweedfs", weed=str(weed_with_metrics(workdir, find_weed(), port)))
    with server:
        url = f"http://{HOST}:{port}/metrics"
        try:
            promtext.fetch(url)
        except OSError as exc:
            log.warning("SeaweedFS metrics at %s do not answer (%s); requests will show as n/a", url, exc)
            url = None
        yield server, url
