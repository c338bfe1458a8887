"""What the service's routes share: settings, keys, the model registry, the batcher, metrics."""

from __future__ import annotations

import time
from typing import Any

from winnow.monitor import DriftMonitor
from winnow.serve.batcher import MicroBatcher
from winnow.serve.metrics import ServeMetrics
from winnow.serve.registry import ModelRegistry
from winnow.serve.security import ApiKeys
from winnow.serve.settings import ServeSettings


class ServiceState:
    """What the routes share: settings, keys, admin keys, registry, batcher, metrics."""

    def __init__(
        self, settings: ServeSettings, keys: ApiKeys, metrics: ServeMetrics, admin_keys: ApiKeys | None = None
    ) -> None:
        self.settings, self.keys, self.metrics = settings, keys, metrics
        self.admin_keys = admin_keys if admin_keys is not None else ApiKeys()
        self.registry = ModelRegistry(
            settings.artifact,
            threads=settings.threads,
            on_swap=metrics.model_swapped,
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
