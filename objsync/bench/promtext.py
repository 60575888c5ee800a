"""Read Prometheus /metrics pages: SeaweedFS's S3 request counter and objsync's pass counters."""

from __future__ import annotations

import urllib.request
from typing import Mapping

from prometheus_client.parser import text_string_to_metric_families

S3_REQUESTS = "SeaweedFS_s3_request_total"
PASSES = "objsync_passes_total"
PASS_SECONDS_SUM = "objsync_pass_duration_seconds_sum"

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, timeout: float = 2.0) -> str:
    """The text of a metrics page; loopback addresses must not go through a proxy."""
    with _NO_PROXY.open(url, timeout=timeout) as response:
        return response.read().decode("utf-8", "replace")


def total(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    want = dict(labels or {})
    found = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in want.items()):
                found += sample.value
    return found


def s3_requests(metrics_url: str | None, bucket: str) -> int | None:
    """Requests the SeaweedFS S3 gateway has answered for `bucket` so far, or None without metrics."""
    if not metrics_url:
        return None
    return round(total(fetch(metrics_url), S3_REQUESTS, {"bucket": bucket}))
