"""Prometheus series: objinsync's names, so existing dashboards keep working, plus objsync's own."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from objsync.model import PassReport


class Metrics:
    """One registry per process; `observe` records a finished pass."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # objinsync's gauges, with its units: the last pass's counts and its time in milliseconds.
        self.loop_sync_time = Gauge("objinsync_loop_sync_time",
                                    "Number of milliseconds it takes to complete a full sync loop.", registry=r)
        self.files_listed = Gauge("objinsync_pull_files_listed", "Number of files checked in each pull cycle.",
                                  registry=r)
        self.files_pulled = Gauge("objinsync_pull_files_pulled", "Number of files pulled in each pull cycle.",
                                  registry=r)
        self.files_deleted = Gauge("objinsync_pull_files_deleted", "Number of files deleted in each pull cycle.",
                                   registry=r)
        self.pass_seconds = Histogram("objsync_pass_duration_seconds", "Duration of pull passes.",
                                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=r)
        self.passes = Counter("objsync_passes", "Pull passes by result.", ["result"], registry=r)
        self.fetched = Counter("objsync_files_fetched", "Files downloaded.", registry=r)
        self.verified = Counter("objsync_files_verified",
                                "Local files found to hold the right bytes already (no download).", registry=r)
        self.bytes = Counter("objsync_bytes_fetched", "Bytes downloaded.", registry=r)
        self.deleted = Counter("objsync_files_deleted", "Local files deleted.", registry=r)
        self.errors = Counter("objsync_errors", "Errors by kind.", ["kind"], registry=r)
        self.consecutive_failures = Gauge("objsync_consecutive_failures", "Failed passes in a row.", registry=r)
        self.last_success = Gauge("objsync_last_success_timestamp_seconds",
                                  "Unix time of the last successful pass.", registry=r)
        self.listed = Gauge("objsync_files_listed", "Objects listed in the last pass.", registry=r)
        for result in ("ok", "failed"):
            self.passes.labels(result)
        for kind in ("listing", "fetch", "rejected", "delete", "guard"):
            self.errors.labels(kind)

    def observe(self, report: PassReport, failures: int) -> None:
        """Record one pass and the current run of consecutive failures."""
        self.loop_sync_time.set(round(report.seconds * 1000))
        self.files_listed.set(report.listed)
        self.files_pulled.set(report.fetched)
        self.files_deleted.set(report.deleted)
        self.listed.set(report.listed)
        self.pass_seconds.observe(report.seconds)
        self.passes.labels("failed" if report.transfer_failed else "ok").inc()
        self.fetched.inc(report.fetched)
        self.verified.inc(report.verified)
        self.bytes.inc(report.bytes)
        self.deleted.inc(report.deleted)
        for kind, n in report.error_kinds().items():
            self.errors.labels(kind).inc(n)
        self.consecutive_failures.set(failures)
        if not report.transfer_failed:
            self.last_success.set(time.time())
