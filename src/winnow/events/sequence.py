"""A sequence encoder over each entity's most recent events: a small GRU trained on the label.

Each of an entity's last ``length`` events before the cut (inside the history window) is one
step: its numbers (sign-preserving log, standardised), the days since its previous event and
its age at the cut (logs), an embedding of each low-cardinality text value. The GRU's final
state goes through a small head to a logit.

Trained out of fold (folds by entity, so a stacked entity never trains the model that scores
it), with early stopping on a held-out tenth of each fold's training rows. Each training row's
``sequence_score`` comes from the fold model that did not see it, so the screening model can
use it as a feature without learning a leak; screening averages the fold models' logits. The
fold models are saved as safetensors in the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.events.features import EventFeatures, sql_timestamp
from winnow.events.log import EventLog, quote

#: name of the encoder's feature column in the entity table
SCORE = "sequence_score"
HIDDEN, EMBED, FOLDS, MAX_EPOCHS, PATIENCE, BATCH = 32, 4, 5, 40, 4, 256


@dataclass
class Steps:
    """Padded event steps for ``n`` entities: numbers ``[n, L, F]``, text codes ``[n, L, C]``,
    and how many steps each has (at least 1: an entity without events in the history gets one
    empty step, flagged)."""

    num: np.ndarray
    cat: np.ndarray
    lengths: np.ndarray

    def take(self, rows: np.ndarray) -> Steps:
        return Steps(self.num[rows], self.cat[rows], self.lengths[rows])

    @staticmethod
    def concat(parts: list[Steps]) -> Steps:
        """The steps of several cuts, one after the other (all of the encoder's length)."""
        return Steps(
            np.concatenate([p.num for p in parts]),
            np.concatenate([p.cat for p in parts]),
            np.concatenate([p.lengths for p in parts]),
        )


class SequenceEncoder:
    """See the module docstring."""

    def __init__(self, features: EventFeatures, length: int, seed: int = 0, threads: int = 0) -> None:
        self.features, self.length, self.seed, self.threads = features, length, seed, threads
        #: per number column: mean and std of sign(x) * log1p(|x|) over the training steps
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.states: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ data
    def steps(self, log: EventLog, cut: date, entities: pa.Array) -> Steps:
        """The last events before ``cut`` of each entity in ``entities`` (in that order)."""
        f, n = self.features, len(entities)
        c, hdays, length = sql_timestamp(cut), f.history[1], self.length
        cats = list(f.categories)
        cols = ", ".join(
            [f"CAST({quote(x)} AS DOUBLE) AS {quote('n_' + x)}" for x in f.numeric]
            + [f"CAST({quote(x)} AS VARCHAR) AS {quote('c_' + x)}" for x in cats]
        )
        order = ", ".join(["t", *[quote(x) for x in f.numeric], *[quote(x) for x in cats]])
        log.con.register("wanted", pa.table({"e": entities, "pos": np.arange(n, dtype=np.int64)}))
        try:
            rows = log.con.sql(f"""
SELECT w.pos, s.rn, s.k, s.gap, s.age
  {"".join(", s." + quote("n_" + x) for x in f.numeric)}{"".join(", s." + quote("c_" + x) for x in cats)}
FROM (
  SELECT e, row_number() OVER (PARTITION BY e ORDER BY {order} DESC) AS rn,
         least(count(*) OVER (PARTITION BY e), {length}) AS k,
         epoch(t - lag(t) OVER (PARTITION BY e ORDER BY {order})) / 86400.0 AS gap,
         epoch({c} - t) / 86400.0 AS age{", " + cols if cols else ""}
  FROM events WHERE t < {c} AND t >= {c} - INTERVAL {hdays} DAY
  QUALIFY rn <= {length}
) s JOIN wanted w USING (e)
""").to_arrow_table()
        finally:
            log.con.unregister("wanted")
        width = 4 + len(f.numeric)
        num = np.zeros((n, length, width), dtype=np.float32)
        cat = np.zeros((n, length, len(cats)), dtype=np.int64)
        lengths = np.ones(n, dtype=np.int64)
        num[:, 0, 3] = 1.0  # the empty step's flag, overwritten where an entity has events
        if rows.num_rows:
            pos = rows.column("pos").to_numpy()
            k = rows.column("k").to_numpy()
            step = k - rows.column("rn").to_numpy()  # oldest kept event first
            lengths[pos] = k
            gap = rows.column("gap").to_numpy(zero_copy_only=False)
            has_gap = np.isfinite(gap)
            num[pos, step, 0] = np.log1p(np.where(has_gap, np.maximum(gap, 0), 0.0))
            num[pos, step, 1] = has_gap
            num[pos, step, 2] = np.log1p(rows.column("age").to_numpy()) / np.log1p(hdays)
            num[pos, step, 3] = 0.0
            for j, x in enumerate(f.numeric):
                v = rows.column("n_" + x).to_numpy(zero_copy_only=False).astype(np.float64)
                num[pos, step, 4 + j] = np.nan_to_num(np.sign(v) * np.log1p(np.abs(v)))
            for j, x in enumerate(cats):
                codes = {v: i + 1 for i, v in enumerate(f.categories[x])}
                vals = rows.column("c_" + x).to_pylist()
                cat[pos, step, j] = [codes.get(v, 0) for v in vals]
        return Steps(num, cat, lengths)

    def _standardise(self, s: Steps) -> Steps:
        assert self.center is not None and self.scale is not None
        num = s.num.copy()
        num[:, :, 4:] = (num[:, :, 4:] - self.center) / self.scale
        mask = np.arange(num.shape[1])[None, :] < s.lengths[:, None]
        num[~mask] = 0.0
        return Steps(num, s.cat, s.lengths)

    # ------------------------------------------------------------------ model
    def _net(self) -> Any:
        import torch
        from torch import nn

        f = self.features

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embeds = nn.ModuleList(nn.Embedding(len(v) + 1, EMBED) for v in f.categories.values())
                self.gru = nn.GRU(4 + len(f.numeric) + EMBED * len(f.categories), HIDDEN, batch_first=True)
                self.head = nn.Sequential(nn.Linear(HIDDEN, 16), nn.ReLU(), nn.Linear(16, 1))

            def forward(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
                parts = [num, *[emb(cat[:, :, j]) for j, emb in enumerate(self.embeds)]]
                x = torch.cat(parts, dim=-1)
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                _, h = self.gru(packed)
                return self.head(h[-1]).squeeze(-1)  # type: ignore[no-any-return]

        return Net()

    def _predict(self, net: Any, s: Steps) -> np.ndarray:
        import torch

        net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(s.lengths), 4096):
                out.append(
                    net(
                        torch.from_numpy(s.num[i : i + 4096]),
                        torch.from_numpy(s.cat[i : i + 4096]),
                        torch.from_numpy(s.lengths[i : i + 4096]),
                    ).numpy()
                )
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def _train(self, s: Steps, y: np.ndarray, seed: int) -> Any:
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        n_val = max(len(y) // 10, 1)
        val, tr = order[:n_val], order[n_val:]
        net = self._net()
        opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        sv, yv = s.take(val), torch.from_numpy(y[val].astype(np.float32))
        best, best_state, waited = np.inf, None, 0
        for _epoch in range(MAX_EPOCHS):
            net.train()
            for i in range(0, len(tr), BATCH):
                b = tr[i : i + BATCH]
                opt.zero_grad()
                logit = net(
                    torch.from_numpy(s.num[b]), torch.from_numpy(s.cat[b]), torch.from_numpy(s.lengths[b])
                )
                loss = loss_fn(logit, torch.from_numpy(y[b].astype(np.float32)))
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
            tr = tr[rng.permutation(len(tr))]
            v = float(loss_fn(torch.from_numpy(self._predict(net, sv).astype(np.float32)), yv))
            if v < best - 1e-4:
                best, waited = v, 0
                best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
            else:
                waited += 1
                if waited >= PATIENCE:
                    break
        assert best_state is not None
        net.load_state_dict(best_state)
        return net

    def fit_out_of_fold(self, s: Steps, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Train one model per fold (folds by ``groups``); the out-of-fold logits of every row."""
        import torch
        from sklearn.model_selection import StratifiedGroupKFold

        if self.threads:
            torch.set_num_threads(self.threads)
        live = s.num[:, :, 4:][np.arange(s.num.shape[1])[None, :] < s.lengths[:, None]].astype(np.float64)
        self.center = live.mean(axis=0).astype(np.float32) if len(live) else np.zeros(0, np.float32)
        self.scale = (live.std(axis=0) + 1e-6).astype(np.float32) if len(live) else np.ones(0, np.float32)
        s = self._standardise(s)
        oof = np.zeros(len(y))
        folds = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=self.seed)
        self.states = []
        for k, (tr, te) in enumerate(folds.split(np.zeros(len(y)), y, groups)):
            net = self._train(s.take(tr), y[tr], self.seed * 1000 + k)
            oof[te] = self._predict(net, s.take(te))
            self.states.append({name: t.numpy().copy() for name, t in net.state_dict().items()})
        return oof

    def score(self, s: Steps) -> np.ndarray:
        """The fold models' mean logit for each entity."""
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        s = self._standardise(s)
        total = np.zeros(len(s.lengths))
        for state in self.states:
            net = self._net()
            net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
            total += self._predict(net, s)
        return total / max(len(self.states), 1)

    # ------------------------------------------------------------------ artifact
    def to_files(self) -> tuple[dict[str, Any], bytes]:
        from safetensors.numpy import save

        assert self.center is not None and self.scale is not None
        arrays = {"center": self.center, "scale": self.scale}
        for k, state in enumerate(self.states):
            arrays.update({f"fold{k}.{name}": np.ascontiguousarray(v) for name, v in state.items()})
        return {"length": self.length, "folds": len(self.states), "seed": self.seed}, save(arrays)

    @classmethod
    def from_files(cls, features: EventFeatures, meta: dict[str, Any], data: bytes) -> SequenceEncoder:
        from safetensors.numpy import load

        arrays = load(data)
        enc = cls(features, int(meta["length"]), int(meta["seed"]))
        enc.center, enc.scale = arrays["center"], arrays["scale"]
        enc.states = [
            {name.split(".", 1)[1]: v for name, v in arrays.items() if name.startswith(f"fold{k}.")}
            for k in range(int(meta["folds"]))
        ]
        return enc
