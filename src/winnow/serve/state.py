"""What the service's routes share: settings, keys, the model registry, the batcher, metrics."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from winnow.monitor import DriftMonitor
from winnow.review.store import ReviewStore
from winnow.serve.batcher import MicroBatcher
from winnow.serve.metrics import ServeMetrics
from winnow.serve.registry import ModelRegistry
from winnow.serve.review import ReviewDesk
from winnow.serve.security import ApiKeys
from winnow.serve.settings import ServeSettings


class FrozenStartUp:
    """What start-up made (the model, the libraries: ~300k objects) kept out of the garbage
    collector's full passes while the service runs: one pass over it took ~130 ms, a pause
    every request waiting at that moment would see (bench/RESULTS.md, "Fast by default, round 8").

    A model swap thaws everything, so that the old model can be collected once its last
    requests are done, and freezes again ``settle_s`` later (the request timeout and a second):
    one collection then, and no old model kept for ever."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self.active = False
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def freeze(self) -> None:
        """Collect once and freeze what is left (at start-up)."""
        with self._lock:
            self.active = True
            self._freeze()

    def _freeze(self) -> None:
        self._timer = None
        gc.collect()
        gc.freeze()

    def _refreeze(self) -> None:
        """``settle_s`` after a swap: freeze again, unless the service stopped or swapped again
        meanwhile (a timer that fired while ``close`` or ``swapped`` held the lock)."""
        with self._lock:
            if self.active and self._timer is not None and self._timer is threading.current_thread():
                self._freeze()

    def swapped(self) -> None:
        with self._lock:
            if not self.active:
                return
            if self._timer is not None:
                self._timer.cancel()
            gc.unfreeze()
            self._timer = threading.Timer(self.settle_s, self._refreeze)
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """Thaw everything (a process that serves again, or goes on with other work)."""
        with self._lock:
            self.active = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            gc.unfreeze()


class ServiceState:
    """What the routes share: settings, keys, admin keys, registry, batcher, metrics."""

    def __init__(
        self, settings: ServeSettings, keys: ApiKeys, metrics: ServeMetrics, admin_keys: ApiKeys | None = None
    ) -> None:
        self.settings, self.keys, self.metrics = settings, keys, metrics
        self.frozen = FrozenStartUp(settle_s=settings.request_timeout_s + 1.0)
        self.admin_keys = admin_keys if admin_keys is not None else ApiKeys()
        self.registry = ModelRegistry(
            settings.artifact,
            threads=settings.threads,
            on_swap=self._swapped,
            on_refused=metrics.reload_refused,
            monitor=self._monitor_for,
            verify_key=settings.verify_key,
        )
        self.batcher = MicroBatcher(
            max_wait_s=settings.batch_wait_ms / 1000,
            max_records=settings.max_batch_records,
            inline_records=settings.inline_records,
            on_batch=metrics.observe_batch,
        )
        self.ready = False
        self.started = time.time()
        #: the serving model's description for ``GET /v1/model``, built once per version
        self.described: dict[str, Any] = {}
        #: ``--review``: the queue of screened records for people to judge
        self.review: ReviewDesk | None = None
        if settings.review is not None:
            self.review = ReviewDesk(ReviewStore(settings.review), settings.review_sample)

    def _swapped(self, old: Any, new: Any) -> None:
        self.metrics.model_swapped(old, new)
        if old is not None:
            self.frozen.swapped()

    def _monitor_for(self, screener: Any) -> DriftMonitor | None:
        """A drift monitor per model version (None for artifacts without a reference)."""
        if screener.reference_ is None:
            return None
        st = self.settings
        return DriftMonitor(
            screener.reference_,
            window=st.monitor_window,
            audit_fraction=st.audit_fraction,
            audit_path=st.audit_file,
        )
