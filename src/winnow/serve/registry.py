"""The model the service scores with, and how a new artifact version replaces it.

A :class:`LoadedModel` is immutable: the screener, its :class:`~winnow.online.OnlineScorer`,
a version id and where it came from. :class:`ModelRegistry` holds one and replaces it with a
single reference assignment, so a request that took the old model before the swap finishes on
it (the batcher keeps each request's model with the request) and every later request sees the
new one. Nothing is swapped until the new artifact has loaded, verified its hashes and scored a
probe record; a broken artifact raises :class:`ReloadRefused` and the old model keeps serving.

Watching: :meth:`ModelRegistry.watch` looks at the artifact folder every few seconds (names,
sizes and modification times of its files, so an in-place copy is seen as well as the atomic
folder rename of :meth:`winnow.Screener.save`) and reloads when it changed. A refused version
is not retried until the folder changes again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from winnow.artifact import manifest_version
from winnow.errors import WinnowError
from winnow.monitor import DriftMonitor
from winnow.online import OnlineScorer
from winnow.screener import Screener

log = logging.getLogger("winnow.serve")

Signature = tuple[tuple[str, int, int, int], ...]


class ReloadRefused(WinnowError):
    """An artifact could not be loaded to serve; a model already serving keeps serving.

    Parameters
    ----------
    path : the artifact folder.
    problem : what is wrong with it.
    serving : version of the model that keeps serving (None at start, when there is none).
    """

    exit_code = 4

    def __init__(self, path: object, problem: str, serving: str | None = None) -> None:
        self.path, self.problem, self.serving = path, problem, serving
        msg = f"artifact {str(path)!r} refused: {problem}"
        if serving is not None:
            msg = msg.rstrip(". ") + f". Version {serving} keeps serving."
        super().__init__(msg)


@dataclass(frozen=True)
class LoadedModel:
    """One loaded artifact version; never changed after it is built."""

    screener: Screener
    scorer: OnlineScorer
    version: str
    path: Path
    loaded_at: float
    manifest: dict[str, Any] = field(repr=False)
    #: what selecting at the threshold should deliver (:meth:`Screener.expected_at`)
    expected: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def fields(self) -> list[tuple[str, str]]:
        """(name, role) of every field a record must carry."""
        return [(name, role.value) for name, role in self.scorer.fields]

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` returns."""
        man = self.manifest
        return {
            "version": self.version,
            "path": str(self.path),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "winnow_version": man["winnow_version"],
            "created": man["created"],
            "target": man["target"],
            "threshold": man["threshold"],
            "budget": man["config"].get("budget"),
            "id_column": self.scorer.id_column,
            "fields": [{"name": n, "role": r} for n, r in self.fields],
            "rule_fields": list(self.scorer.extra_fields),
            "rules": man["config"].get("rules", []),
            "schema": man["schema"],
            "models": man["fusion"],
            "metrics": man["metrics"],
            "expected": self.expected,
        }


def folder_signature(path: Path) -> Signature | None:
    """Names, sizes, mtimes and inodes of the files under ``path`` (None if it is not readable)."""
    out: list[tuple[str, int, int, int]] = []
    try:
        for root, _dirs, files in os.walk(path):
            for name in files:
                p = os.path.join(root, name)
                st = os.stat(p)
                out.append((os.path.relpath(p, path), st.st_size, st.st_mtime_ns, st.st_ino))
    except OSError:
        return None
    return tuple(sorted(out)) if out else None


MonitorFactory = Callable[[Screener], DriftMonitor | None]


def load_model(
    path: Path, *, threads: int = 1, monitor: MonitorFactory | None = None, verify_key: Path | None = None
) -> LoadedModel:
    """Load, verify and probe an artifact; raises :class:`ReloadRefused` if it cannot serve
    (also when ``verify_key`` is given and the artifact does not carry its signature).

    ``monitor`` builds the drift monitor of the new model (each version is compared with its own
    training reference); it is attached after the probe, which it must not count.
    """
    path = Path(path)
    try:
        screener = Screener.load(path, verify_key=verify_key)
        screener.set_threads(threads)
        scorer = OnlineScorer(screener)
        # a record of unknown (null) values must score: proves the models run end to end
        probe = scorer.score_records([dict.fromkeys(n for n, _ in scorer.fields)], threshold=0.0, reasons=1)
        manifest = screener.manifest()
        if monitor is not None:
            scorer.monitor = monitor(screener)
    except WinnowError as e:
        problem = str(e).removeprefix(f"artifact {str(path)!r}: ")
        raise ReloadRefused(path, problem) from e
    except Exception as e:  # a damaged artifact may fail anywhere in a model library: refuse it
        raise ReloadRefused(path, f"it could not be loaded ({type(e).__name__}: {e})") from e
    result = probe[0]
    if result.error is not None or result.score is None or not math.isfinite(result.score):
        problem = result.error.describe("field") if result.error is not None else f"score {result.score!r}"
        raise ReloadRefused(path, f"it does not score a probe record ({problem})")
    return LoadedModel(
        screener=screener,
        scorer=scorer,
        version=manifest_version(manifest),
        path=path,
        loaded_at=time.time(),
        manifest=manifest,
        expected=screener.expected_at(screener.threshold_.fraction),
    )


class ModelRegistry:
    """Holds the serving model; swaps it atomically on reload.

    Parameters
    ----------
    path : the artifact folder to serve (loaded at once; a broken one raises ReloadRefused).
    threads : scoring threads per model.
    on_swap : called with (old, new) after every successful swap (metrics).
    on_refused : called with the ReloadRefused of every refused reload (metrics).
    verify_key : an Ed25519 public key file; every version loaded (the first, reloads, watched
        changes) must carry its signature.
    """

    def __init__(
        self,
        path: Path,
        *,
        threads: int = 1,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
        on_refused: Callable[[ReloadRefused], None] | None = None,
        monitor: MonitorFactory | None = None,
        verify_key: Path | None = None,
    ) -> None:
        self.threads = threads
        self.verify_key = verify_key
        self.monitor = monitor
        self.on_swap, self.on_refused = on_swap, on_refused
        self._lock = threading.Lock()  # one reload at a time
        self._current: LoadedModel | None = None
        self._signature: Signature | None = None
        self._refused_signature: Signature | None = None
        self.last_error: str | None = None
        self.path = Path(path)
        self.reload(self.path)

    @property
    def current(self) -> LoadedModel:
        model = self._current
        assert model is not None  # set in __init__, never unset
        return model

    def reload(self, path: Path | None = None) -> LoadedModel:
        """Load ``path`` (default: the current folder) and swap it in; blocking, thread-safe."""
        target = Path(path) if path is not None else self.path
        with self._lock:
            signature = folder_signature(target)  # taken first: a change during loading reloads again
            try:
                new = load_model(
                    target, threads=self.threads, monitor=self.monitor, verify_key=self.verify_key
                )
            except ReloadRefused as refused:
                serving = self._current.version if self._current is not None else None
                e = ReloadRefused(refused.path, refused.problem, serving)
                self.last_error = str(e)
                if target == self.path:
                    self._refused_signature = signature
                log.error("%s", e)
                if self.on_refused is not None:
                    self.on_refused(e)
                raise e from refused.__cause__
            old, self._current = self._current, new
            self.path, self._signature, self._refused_signature = target, signature, None
            self.last_error = None
        if old is None:
            log.info("serving %s (version %s)", target, new.version)
        else:
            log.info("model %s replaced by %s (from %s)", old.version, new.version, target)
        if self.on_swap is not None:
            self.on_swap(old, new)
        return new

    async def areload(self, path: Path | None = None) -> LoadedModel:
        """:meth:`reload` in a thread, so the event loop keeps answering requests meanwhile."""
        return await asyncio.to_thread(self.reload, path)

    def changed(self) -> bool:
        """Whether the served folder's files differ from the loaded (or last refused) version."""
        sig = folder_signature(self.path)
        return sig is not None and sig != self._signature and sig != self._refused_signature

    async def watch(self, interval_s: float) -> None:
        """Reload whenever the served folder changes; runs until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            if not self.changed():
                continue
            # a copy in progress changes the folder again within the interval: wait for it to settle
            before = folder_signature(self.path)
            await asyncio.sleep(min(interval_s, 0.5))
            if folder_signature(self.path) != before:
                continue
            try:
                await self.areload()
            except ReloadRefused:
                pass  # logged and counted in reload(); the old model keeps serving
