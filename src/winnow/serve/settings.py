"""How one service process runs: limits, timeouts, batching and where the key file is.

Settings hold no secret: API keys are read from ``WINNOW_API_KEY`` or the key file, admin keys from
the admin key file, by :mod:`winnow.serve.security` when the application starts. With several
uvicorn workers the settings travel to each worker process as JSON in the ``WINNOW_SERVE_SETTINGS``
variable.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from winnow.errors import ConfigError

ENV_SETTINGS = "WINNOW_SERVE_SETTINGS"
ENV_API_KEY = "WINNOW_API_KEY"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """Options of the HTTP service.

    Parameters
    ----------
    artifact : the artifact folder served first (and watched with ``watch``).
    max_records : most records one request may carry.
    max_body_bytes : largest request body accepted (413 above it).
    request_timeout_s : a request not answered within this time gets 408 (body too slow) or 503.
    api_key_file : file with accepted API keys, one per line (``#`` comments allowed).
    watch : reload when the files of the artifact folder change.
    watch_interval_s : seconds between two looks at the watched folder.
    batch_wait_ms : how long the batcher waits for more requests before scoring a micro-batch
        (0: take what is queued; requests that arrive while a batch is scored form the next).
    max_batch_records : most records scored in one micro-batch.
    inline_records : micro-batches of JSON records up to this many are scored on the event loop
        itself, larger ones (and Arrow bodies) on the scoring thread (0: always the thread).
    threads : threads per model for scoring (1 suits small micro-batches; 0 = all cores).
    reasons : reasons per selected record when the request does not say.
    admin_key_file : file of admin keys (one per line, none shared with ``api_key_file``); the
        admin routes (``POST /v1/admin/reload``) exist only when it is given.
    reload_root : folder under which ``POST /v1/admin/reload`` may name another artifact (None:
        only the served folder itself is reloaded).
    monitor_window : the most recent records drift monitoring compares with the reference.
    audit_fraction : share of the not-selected records kept in ``audit_file`` (0 = none).
    audit_file : JSON-lines file the audit sample is appended to.
    verify_key : Ed25519 public key (PEM); every artifact served must carry its signature.
    review : a review store (``duckdb:reviews.duckdb``, ``postgresql://...``): the service
        keeps what it screens there for people to judge, and serves the review page.
    review_sample : share of the not-selected records offered for review (by record id).
    """

    artifact: Path
    max_records: int = 1000
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_timeout_s: float = 30.0
    api_key_file: Path | None = None
    watch: bool = False
    watch_interval_s: float = 1.0
    batch_wait_ms: float = 0.0
    max_batch_records: int = 4096
    inline_records: int = 256
    threads: int = 1
    reasons: int = 3
    admin_key_file: Path | None = None
    reload_root: Path | None = None
    monitor_window: int = 10_000
    audit_fraction: float = 0.0
    audit_file: Path | None = None
    verify_key: Path | None = None
    review: str | None = None
    review_sample: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "artifact", Path(self.artifact))
        if self.api_key_file is not None:
            object.__setattr__(self, "api_key_file", Path(self.api_key_file))
        for name in ("admin_key_file", "reload_root", "audit_file", "verify_key"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        checks: list[tuple[str, Any, bool, str]] = [
            (
                "--max-records",
                self.max_records,
                _int(self.max_records) and self.max_records >= 1,
                "an integer >= 1",
            ),
            (
                "--max-body-bytes",
                self.max_body_bytes,
                _int(self.max_body_bytes) and self.max_body_bytes >= 64,
                "an integer >= 64",
            ),
            ("--timeout", self.request_timeout_s, _pos(self.request_timeout_s), "a number of seconds > 0"),
            (
                "--monitor-window",
                self.monitor_window,
                _int(self.monitor_window) and self.monitor_window >= 1,
                "an integer >= 1",
            ),
            (
                "--audit-fraction",
                self.audit_fraction,
                isinstance(self.audit_fraction, int | float)
                and 0 <= self.audit_fraction <= 1
                and (self.audit_fraction == 0 or self.audit_file is not None),
                "a share in [0, 1], with --audit-file when above 0",
            ),
            (
                "--watch-interval",
                self.watch_interval_s,
                _pos(self.watch_interval_s),
                "a number of seconds > 0",
            ),
            (
                "--batch-wait-ms",
                self.batch_wait_ms,
                _pos(self.batch_wait_ms) or self.batch_wait_ms == 0,
                "a number of milliseconds >= 0",
            ),
            (
                "--max-batch-records",
                self.max_batch_records,
                _int(self.max_batch_records) and self.max_batch_records >= 1,
                "an integer >= 1",
            ),
            (
                "--inline-records",
                self.inline_records,
                _int(self.inline_records) and self.inline_records >= 0,
                "an integer >= 0",
            ),
            ("--threads", self.threads, _int(self.threads) and self.threads >= 0, "an integer >= 0"),
            ("--reasons", self.reasons, _int(self.reasons) and 0 <= self.reasons <= 20, "an integer 0..20"),
            (
                "--review-sample",
                self.review_sample,
                isinstance(self.review_sample, int | float) and 0 <= self.review_sample <= 1,
                "a share in [0, 1]",
            ),
        ]
        for option, value, ok, expected in checks:
            if not ok:
                raise ConfigError(option, value, expected)

    def to_env(self) -> str:
        """JSON for ``WINNOW_SERVE_SETTINGS`` (paths as strings)."""
        d = asdict(self)
        d["artifact"] = str(self.artifact)
        d["api_key_file"] = None if self.api_key_file is None else str(self.api_key_file)
        for name in ("admin_key_file", "reload_root", "audit_file", "verify_key"):
            d[name] = None if getattr(self, name) is None else str(getattr(self, name))
        return json.dumps(d)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        """Settings from ``WINNOW_SERVE_SETTINGS`` (JSON) or, failing that, ``WINNOW_ARTIFACT``."""
        env = os.environ if environ is None else environ
        raw = env.get(ENV_SETTINGS)
        if raw is None:
            artifact = env.get("WINNOW_ARTIFACT")
            if not artifact:
                raise ConfigError(
                    ENV_SETTINGS,
                    None,
                    "JSON settings, or WINNOW_ARTIFACT=<artifact folder>",
                    "Start the service with `winnow serve ARTIFACT`.",
                )
            return cls(artifact=Path(artifact))
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(ENV_SETTINGS, raw[:80], "a JSON object of serve settings") from e
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(ENV_SETTINGS, unknown, f"only the keys {sorted(known)}")
        return cls(**data)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
