"""Fine-tuning the sentence encoder on the screening labels (``fit --finetune-text``).

The pretrained encoder (:mod:`winnow.prep.encoder`) embeds text for any task; fine-tuning bends
its top layers towards *this* task. Recipe (linear probe, then fine-tune: Kumar et al., 2022,
"Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution"):

1. The training texts are split into a fitting part and a validation part (stratified,
   ``valid_fraction``); at most ``max_rows`` texts are used (a stratified sample beyond that).
2. A logistic-regression head is fitted on the frozen embeddings (served from the embedding
   cache, so this costs nothing when the texts were embedded before).
3. The top ``layers`` transformer layers and the head are trained with AdamW on the binary
   cross-entropy of the normalised sentence embedding, in batches of similar length; lower
   layers and the token embeddings stay frozen (cheaper on a CPU, and a few thousand labels
   cannot re-learn them).
4. After each epoch the validation loss is measured; the epoch with the lowest loss is kept and
   training stops after ``patience`` epochs without improvement, after ``max_epochs`` or when
   ``time_limit`` seconds are spent (the first epoch always completes).

Only the tuned layers are stored (safetensors, in the artifact's preprocessing arrays, with its
checksums); at screening they are loaded into a copy of the pretrained encoder. The tuned
encoder's embeddings have their own cache file, named by a hash of the tuned weights.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from winnow.errors import ConfigError

#: texts per optimisation step
BATCH = 32


def _bert(model: Any) -> Any:
    return model[0].auto_model


def _features(model: Any, texts: Sequence[str]) -> dict[str, Any]:
    tok = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers >= 6 / < 6
    return dict(tok(list(texts)))


def _embed(model: Any, texts: Sequence[str]) -> Any:
    return model(_features(model, texts))["sentence_embedding"]


def _length_batches(lengths: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of ``BATCH`` rows of similar length (less padding), in random order: rows are
    shuffled, cut into pools of 16 batches, each pool sorted by length and cut into batches."""
    rows = rows[rng.permutation(len(rows))]
    out: list[np.ndarray] = []
    pool = BATCH * 16
    for i in range(0, len(rows), pool):
        part = rows[i : i + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[j : j + BATCH] for j in range(0, len(part), BATCH)]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


class FineTuner:
    """Fine-tunes the top layers of the sentence encoder on 0/1 labels of texts.

    Parameters
    ----------
    layers : number of top transformer layers trained (the encoder has 6).
    max_epochs, patience : training length and early-stopping patience, in epochs.
    lr : learning rate of the transformer layers (the head's is 20x).
    valid_fraction : share of the labelled texts held out for early stopping.
    max_rows : at most this many labelled texts are used (a stratified sample beyond).
    time_limit : seconds after which no new epoch starts (None: no limit).
    """

    def __init__(
        self,
        *,
        layers: int = 2,
        max_epochs: int = 3,
        patience: int = 1,
        lr: float = 5e-5,
        valid_fraction: float = 0.2,
        max_rows: int = 20_000,
        time_limit: float | None = None,
    ) -> None:
        self.layers, self.max_epochs, self.patience, self.lr = layers, max_epochs, patience, lr
        self.valid_fraction, self.max_rows, self.time_limit = valid_fraction, max_rows, time_limit
        #: the tuned layers' tensors, keyed ``layer<i>.<parameter>`` (i counted from the bottom)
        self.state_: dict[str, np.ndarray] = {}
        #: training log: epochs, best epoch, validation loss before and after, seconds
        self.history_: dict[str, Any] = {}
        self._model: Any = None

    # ------------------------------------------------------------------ fitting
    def fit(
        self, texts: Sequence[str | None], y: np.ndarray, *, seed: int = 0, threads: int = 1
    ) -> FineTuner:
        import torch
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split

        from winnow.prep.encoder import TextEncoder, load_model

        t0 = time.perf_counter()
        y = np.asarray(y).astype(np.int64)
        docs = np.array([("" if t is None else str(t)) for t in texts], dtype=object)
        keep = np.flatnonzero(np.char.str_len(docs.astype(str)) > 0)
        docs, y = docs[keep], y[keep]
        if len(np.unique(y)) < 2 or min(np.bincount(y, minlength=2)) < 5:
            raise ConfigError(
                "finetune_text",
                True,
                "labelled texts of both classes (at least 5 of each)",
                "Fit without --finetune-text, or with more labelled rows.",
            )
        rng = np.random.default_rng(seed)
        if len(docs) > self.max_rows:
            sub, _ = train_test_split(
                np.arange(len(y)), train_size=self.max_rows, stratify=y, random_state=seed
            )
            docs, y = docs[np.sort(sub)], y[np.sort(sub)]
        fit_rows, valid_rows = train_test_split(
            np.arange(len(y)), test_size=self.valid_fraction, stratify=y, random_state=seed
        )
        torch.set_num_threads(max(int(threads), 1))
        torch.manual_seed(seed)

        frozen = TextEncoder().encode(list(docs))
        probe = LogisticRegression(C=1.0, max_iter=1000).fit(frozen[fit_rows], y[fit_rows])

        base = load_model()
        model = copy.deepcopy(base)
        bert = _bert(model)
        n_layers = len(bert.encoder.layer)
        if not 1 <= self.layers <= n_layers:
            raise ConfigError("finetune_layers", self.layers, f"between 1 and {n_layers}")
        top = list(range(n_layers - self.layers, n_layers))
        for p in model.parameters():
            p.requires_grad_(False)
        tuned = [p for i in top for p in bert.encoder.layer[i].parameters()]
        for p in tuned:
            p.requires_grad_(True)
        head = torch.nn.Linear(frozen.shape[1], 1)
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(probe.coef_.astype(np.float32)))
            head.bias.copy_(torch.from_numpy(probe.intercept_.astype(np.float32)))
        opt = torch.optim.AdamW(
            [{"params": tuned, "lr": self.lr}, {"params": head.parameters(), "lr": 20 * self.lr}],
            weight_decay=0.01,
        )
        loss_fn = torch.nn.BCEWithLogitsLoss()
        yt = torch.from_numpy(y.astype(np.float32))
        lengths = np.array([len(d) for d in docs])

        def valid_loss() -> float:
            model.eval()
            total = 0.0
            with torch.no_grad():
                order = valid_rows[np.argsort(lengths[valid_rows], kind="stable")]
                for j in range(0, len(order), 4 * BATCH):
                    b = order[j : j + 4 * BATCH]
                    logits = head(_embed(model, docs[b].tolist())).squeeze(-1)
                    total += float(loss_fn(logits, yt[b]).item()) * len(b)
            return total / max(len(valid_rows), 1)

        steps_per_epoch = math.ceil(len(fit_rows) / BATCH)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda s: min(1.0, (s + 1) / max(steps_per_epoch // 10, 1)),  # warm-up, 10% of an epoch
        )
        start_loss = best = valid_loss()
        best_state = self._tuned_state(bert, top, head)
        best_epoch, bad, epoch = 0, 0, 0
        epoch_seconds: list[float] = []
        for epoch in range(1, self.max_epochs + 1):
            te = time.perf_counter()
            model.train()
            for b in _length_batches(lengths, fit_rows, rng):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(head(_embed(model, docs[b].tolist())).squeeze(-1), yt[b])
                loss.backward()
                opt.step()
                sched.step()
            vl = valid_loss()
            epoch_seconds.append(time.perf_counter() - te)
            if vl < best - 1e-5:
                best, best_epoch, bad = vl, epoch, 0
                best_state = self._tuned_state(bert, top, head)
            else:
                bad += 1
            spent = time.perf_counter() - t0
            if bad >= self.patience:
                break
            if self.time_limit is not None and spent + epoch_seconds[-1] > self.time_limit:
                break
        self.state_ = best_state
        self._model = None
        self.history_ = {
            "layers": self.layers,
            "epochs": epoch,
            "best_epoch": best_epoch,
            "valid_loss_start": round(start_loss, 5),
            "valid_loss": round(best, 5),
            "fit_texts": len(fit_rows),
            "valid_texts": len(valid_rows),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        return self

    @staticmethod
    def _tuned_state(bert: Any, top: list[int], head: Any) -> dict[str, np.ndarray]:
        out = {
            f"layer{i}.{k}": v.detach().cpu().numpy().copy()
            for i in top
            for k, v in bert.encoder.layer[i].state_dict().items()
        }
        out["head.weight"] = head.weight.detach().cpu().numpy().copy()
        out["head.bias"] = head.bias.detach().cpu().numpy().copy()
        return out

    # ------------------------------------------------------------------ use
    @property
    def model_id(self) -> str:
        """Names the tuned encoder (its embedding cache file): base model + hash of the weights."""
        from winnow.prep.encoder import MODEL

        h = hashlib.sha256()
        for k in sorted(self.state_):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.state_[k]).tobytes())
        return f"{MODEL}-ft-{h.hexdigest()[:16]}"

    def model(self) -> Any:
        """The pretrained encoder with the tuned layers loaded (made once, in eval mode)."""
        if self._model is None:
            import torch

            from winnow.prep.encoder import load_model

            if not self.state_:
                raise ConfigError("finetune_text", "unfitted", "a fitted FineTuner")
            model = copy.deepcopy(load_model())
            layers = _bert(model).encoder.layer
            for i in sorted({int(k.split(".")[0][5:]) for k in self.state_ if k.startswith("layer")}):
                prefix = f"layer{i}."
                tensors = {
                    k[len(prefix) :]: torch.from_numpy(np.array(v))
                    for k, v in self.state_.items()
                    if k.startswith(prefix)
                }
                layers[i].load_state_dict(tensors)
            self._model = model.eval()
        return self._model

    # ------------------------------------------------------------------ state
    def to_json(self) -> dict[str, Any]:
        return {"layers": self.layers, "history": self.history_, "model_id": self.model_id}

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{k}": v for k, v in self.state_.items()}

    @classmethod
    def from_state(cls, d: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> FineTuner:
        obj = cls(layers=int(d["layers"]))
        obj.history_ = dict(d.get("history", {}))
        obj.state_ = {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + ".")}
        if obj.model_id != d.get("model_id"):
            raise ConfigError(
                "artifact",
                "text encoder",
                f"the tuned encoder {d.get('model_id')}",
                f"The stored layers hash to {obj.model_id}; the artifact is damaged: refit.",
            )
        return obj
