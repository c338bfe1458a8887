"""Prometheus metrics and the end-of-run accounting of one stream worker.

Exported (own registry, served on ``--metrics-port``):

==========================================  ==================================================
``winnow_stream_records_total{outcome}``    entries handled: selected, not_selected, dead_letter
``winnow_stream_dead_letters_total{kind}``  dead letters by kind (invalid, decode, retries, ...)
``winnow_stream_lag``                       entries not yet delivered to the consumer group
``winnow_stream_pending``                   delivered to the group, not yet acknowledged
``winnow_stream_records_per_second``        handled per second over the last 10 seconds
``winnow_stream_selection_rate``            selected / scored since the worker started
``winnow_stream_batch_seconds``             histogram: read-to-acknowledge time of a batch
``winnow_stream_recovered_total``           own pending entries re-processed after a restart
``winnow_stream_claimed_total``             entries taken over from idle consumers
``winnow_stream_reconnects_total``          Redis reconnects
``winnow_stream_sink_retries_total``        sink writes retried because the sink was unreachable
``winnow_stream_batch_failures_total``      batches that raised and were retried entry by entry
``winnow_drift_*``                          drift of the last scored records vs the training
                                            reference (:class:`winnow.monitor.DriftGauges`)
==========================================  ==================================================

Counters count deliveries: an entry re-processed after a crash is counted again.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from winnow.monitor import DriftGauges


@dataclass
class Accounting:
    """Plain counts for the summary a worker prints when it stops."""

    selected: int = 0
    not_selected: int = 0
    dead_lettered: int = 0
    recovered: int = 0
    claimed: int = 0
    reconnects: int = 0
    sink_retries: int = 0
    batch_failures: int = 0
    batches: int = 0

    @property
    def processed(self) -> int:
        return self.selected + self.not_selected + self.dead_lettered

    def to_json(self) -> dict[str, Any]:
        return {"processed": self.processed, **asdict(self)}


class StreamMetrics:
    """Counters and gauges of one worker; ``serve`` exposes them over HTTP."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.counts = Accounting()
        p = "winnow_stream_"
        self.records = Counter(p + "records", "Stream entries handled, by outcome.", ["outcome"], registry=r)
        self.dead = Counter(p + "dead_letters", "Entries dead-lettered, by kind.", ["kind"], registry=r)
        self.lag = Gauge(p + "lag", "Entries not yet delivered to the consumer group.", registry=r)
        self.pending = Gauge(p + "pending", "Entries delivered but not acknowledged.", registry=r)
        self.rate = Gauge(p + "records_per_second", "Entries handled per second (10 s).", registry=r)
        self.selection = Gauge(p + "selection_rate", "Selected / scored since start.", registry=r)
        self.batch_seconds = Histogram(
            "winnow_stream_batch_seconds",
            "Read-to-acknowledge time of one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.recovered = Counter("winnow_stream_recovered", "Own pending entries re-processed.", registry=r)
        self.claimed = Counter("winnow_stream_claimed", "Entries claimed from idle consumers.", registry=r)
        self.reconnects = Counter("winnow_stream_reconnects", "Redis reconnects.", registry=r)
        self.sink_retries = Counter("winnow_stream_sink_retries", "Sink writes retried.", registry=r)
        self.batch_failures = Counter("winnow_stream_batch_failures", "Batches that raised.", registry=r)
        self.drift = DriftGauges(r)
        self._window: deque[tuple[float, int]] = deque()
        self._server: Any = None

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        from prometheus_client import start_http_server

        from winnow.errors import ConfigError

        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise ConfigError("--metrics-port", port, "a free port on " + host, str(e)) from e

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ------------------------------------------------------------------ events
    def batch(self, selected: int, not_selected: int, dead: dict[str, int], seconds: float) -> None:
        c = self.counts
        c.selected += selected
        c.not_selected += not_selected
        c.batches += 1
        self.records.labels("selected").inc(selected)
        self.records.labels("not_selected").inc(not_selected)
        for kind, n in dead.items():
            c.dead_lettered += n
            self.records.labels("dead_letter").inc(n)
            self.dead.labels(kind).inc(n)
        scored = c.selected + c.not_selected
        if scored:
            self.selection.set(c.selected / scored)
        self.batch_seconds.observe(seconds)
        self._window.append((time.monotonic(), selected + not_selected + sum(dead.values())))
        self.tick()

    def tick(self) -> None:
        """Recompute records/s over the last 10 seconds (falls to 0 when nothing arrives)."""
        now = time.monotonic()
        while self._window and self._window[0][0] < now - 10:
            self._window.popleft()
        if not self._window:
            self.rate.set(0)
            return
        span = max(now - self._window[0][0], 1.0)
        self.rate.set(sum(n for _, n in self._window) / span)

    def backlog(self, lag: int | None, pending: int) -> None:
        if lag is not None:
            self.lag.set(lag)
        self.pending.set(pending)

    def event(self, name: str, n: int = 1) -> None:
        """Count recovered / claimed / reconnects / sink_retries / batch_failures."""
        setattr(self.counts, name, getattr(self.counts, name) + n)
        getattr(self, name).inc(n)
