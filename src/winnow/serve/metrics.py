"""Prometheus metrics of the service, on a registry of its own (one per application).

Exported at ``GET /metrics``::

    winnow_http_requests_total{route,method,status}     requests answered
    winnow_http_request_duration_seconds{route}         latency histogram
    winnow_records_scored_total{route}                  records given a score
    winnow_records_selected_total                       records selected by /v1/screen
    winnow_records_rejected_total{route}                records answered with an error
    winnow_selection_rate                               selected / scored of the last screen request
    winnow_batch_records / winnow_batch_requests        micro-batch sizes (histograms)
    winnow_batch_seconds                                time to score one micro-batch
    winnow_model_info{version,path,winnow_version}      1 for the serving model
    winnow_model_loaded_timestamp_seconds               when the serving model was loaded
    winnow_model_reloads_total{result}                  reloads: ok / refused
    winnow_drift_*                                      drift of the live window (winnow.monitor.DriftGauges)

With several uvicorn workers and ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its
values there and each scrape adds them up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from winnow.monitor import DriftGauges
from winnow.serve.registry import LoadedModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class ServeMetrics:
    """Every metric the service exports."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # labelled series looked up once: the per-request counters of the hot path
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._result_series: dict[str, tuple[Any, Any]] = {}
        # multiprocess mode: metrics live in the default registry's files, read at scrape time
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.requests = Counter(
            "winnow_http_requests", "HTTP requests answered.", ["route", "method", "status"], registry=reg
        )
        self.latency = Histogram(
            "winnow_http_request_duration_seconds",
            "Time from request start to the end of the response.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.scored = Counter("winnow_records_scored", "Records given a score.", ["route"], registry=reg)
        self.selected = Counter("winnow_records_selected", "Records selected by /v1/screen.", registry=reg)
        self.rejected = Counter(
            "winnow_records_rejected", "Records answered with a per-record error.", ["route"], registry=reg
        )
        self.selection_rate = Gauge(
            "winnow_selection_rate",
            "Selected share of the scored records of the last /v1/screen request.",
            registry=reg,
            multiprocess_mode="liveall",
        )
        self.batch_records = Histogram(
            "winnow_batch_records", "Records per scoring micro-batch.", buckets=SIZE_BUCKETS, registry=reg
        )
        self.batch_requests = Histogram(
            "winnow_batch_requests", "Requests per scoring micro-batch.", buckets=SIZE_BUCKETS, registry=reg
        )
        self.batch_seconds = Histogram(
            "winnow_batch_seconds", "Time to score one micro-batch.", buckets=LATENCY_BUCKETS, registry=reg
        )
        self.model_info = Gauge(
            "winnow_model_info",
            "1 for the model version being served.",
            ["version", "path", "winnow_version"],
            registry=reg,
            multiprocess_mode="liveall",
        )
        self.model_loaded = Gauge(
            "winnow_model_loaded_timestamp_seconds",
            "When the serving model was loaded (Unix time).",
            registry=reg,
            multiprocess_mode="liveall",
        )
        self.reloads = Counter("winnow_model_reloads", "Model reloads by result.", ["result"], registry=reg)
        self.drift = DriftGauges(reg)
        self.reviews = Counter(
            "winnow_reviews", "Review verdicts stored, by verdict.", ["verdict"], registry=reg
        )
        self.review_precision = Gauge(
            "winnow_review_precision",
            "Realised precision of the selection: right / reviewed among selected records.",
            registry=reg,
        )
        self.review_recall = Gauge(
            "winnow_review_recall_estimate",
            "Recall estimated from the reviewed sample of not-selected records.",
            registry=reg,
        )
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:  # labels() validates and hashes its arguments on every call
            series = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_batch(self, records: int, requests: int, seconds: float) -> None:
        self.batch_records.observe(records)
        self.batch_requests.observe(requests)
        self.batch_seconds.observe(seconds)

    def observe_results(self, route: str, scored: int, selected: int | None, rejected: int) -> None:
        counted = self._result_series.get(route)
        if counted is None:
            counted = self._result_series[route] = (self.scored.labels(route), self.rejected.labels(route))
        if scored:
            counted[0].inc(scored)
        if rejected:
            counted[1].inc(rejected)
        if selected is not None:
            if selected:
                self.selected.inc(selected)
            if scored:
                self.selection_rate.set(selected / scored)

    def model_swapped(self, old: LoadedModel | None, new: LoadedModel) -> None:
        if old is not None:
            self.reloads.labels("ok").inc()
            # old series go to 0 rather than away: removal is not available in multiprocess mode
            self.model_info.labels(old.version, str(old.path), old.manifest["winnow_version"]).set(0)
        self.model_info.labels(new.version, str(new.path), new.manifest["winnow_version"]).set(1)
        self.model_loaded.set(new.loaded_at)

    def observe_drift(self, report: dict[str, Any]) -> None:
        self.drift.set(report)

    def observe_reviews(self, stats: dict[str, Any]) -> None:
        """The review figures of :meth:`winnow.review.store.ReviewStore.stats` (NaN: not known)."""
        precision = stats.get("precision")
        self.review_precision.set(precision["value"] if precision else float("nan"))
        recall = stats.get("recall_estimate")
        self.review_recall.set(recall if recall is not None else float("nan"))

    def reload_refused(self, _error: Exception) -> None:
        self.reloads.labels("refused").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
