"""A deep tabular network: learned embeddings for every feature feeding an MLP.

Numeric features (scaled, plus missing flags) get periodic embeddings (``PLR``: sin/cos of
learned frequencies, then a per-feature linear layer and ReLU; Gorishniy et al., 2022),
categorical features an ``nn.Embedding``. The concatenation feeds an MLP whose last hidden layer
is the learned row representation (:meth:`DeepLearner.embed`). Trained with AdamW on log-loss,
early-stopped on validation; weights are stored as safetensors.

With ``k > 1`` the network is an ensemble of ``k`` MLPs in one, in the spirit of TabM-mini
(Gorishniy et al., 2024): the embeddings and the MLP are shared, member ``i`` sees the features
multiplied by its own adapter ``r_i`` (initialised to random signs) and has its own output unit.
Each member is trained on its own loss; the prediction averages the members' probabilities.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from winnow.errors import NotFittedError
from winnow.models.base import FitContext, Inputs, Learner


class PeriodicEmbedding(nn.Module):
    """x_i -> ReLU(W_i [sin(2π c_i x_i), cos(2π c_i x_i)] + b_i), one embedding per feature."""

    def __init__(self, n_features: int, dim: int, frequencies: int = 8, sigma: float = 0.1) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.randn(n_features, frequencies) * sigma)
        self.weight = nn.Parameter(torch.empty(n_features, 2 * frequencies, dim))
        self.bias = nn.Parameter(torch.zeros(n_features, dim))
        nn.init.uniform_(self.weight, -1 / math.sqrt(2 * frequencies), 1 / math.sqrt(2 * frequencies))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 2 * math.pi * x.unsqueeze(-1) * self.freq  # (n, p, k)
        v = torch.cat([torch.sin(v), torch.cos(v)], dim=-1)  # (n, p, 2k)
        return torch.relu(torch.einsum("npk,pkd->npd", v, self.weight) + self.bias)


class TabularNet(nn.Module):
    """Embeddings -> MLP -> logit. ``hidden`` gives the widths; the last is the embedding.

    ``mlp`` is a Sequential of ``[Linear, ReLU, Dropout]`` blocks and ``head`` a
    ``Linear(hidden[-1], k)``: member ``i`` of ``k`` reads output ``i`` of the head.
    """

    def __init__(
        self,
        n_num: int,
        cards: list[int],
        dim: int = 16,
        hidden: tuple[int, ...] = (256, 128),
        dropout: float = 0.15,
        k: int = 1,
    ) -> None:
        super().__init__()
        self.k = k
        self.num_emb = PeriodicEmbedding(n_num, dim) if n_num else None
        self.cat_emb = nn.ModuleList(nn.Embedding(c, dim) for c in cards)
        width = (n_num + len(cards)) * dim
        # TabM-mini adapters: one multiplicative vector per member, random signs at the start
        self.adapter = nn.Parameter(torch.randint(0, 2, (k, width)).float() * 2 - 1) if k > 1 else None
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, k)

    def features(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.num_emb is not None:
            parts.append(self.num_emb(x_num).flatten(1))
        for j, emb in enumerate(self.cat_emb):
            parts.append(emb(x_cat[:, j]))
        return torch.cat(parts, dim=1)

    def hidden_states(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """The last hidden layer, (n, width) or, for k > 1, (n, k, width)."""
        f = self.features(x_num, x_cat)
        if self.adapter is not None:
            f = f.unsqueeze(1) * self.adapter  # (n, k, width)
        return self.mlp(f)

    def member_logits(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """(n, k) logits, one per member."""
        h = self.hidden_states(x_num, x_cat)
        if self.adapter is None:
            return self.head(h)
        return (h * self.head.weight).sum(-1) + self.head.bias

    def embed(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        h = self.hidden_states(x_num, x_cat)
        return h if self.adapter is None else h.mean(1)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """The ensemble's logit: log-odds of the members' mean probability."""
        return self.logit_of_features(self.features(x_num, x_cat))

    def logit_of_features(self, f: torch.Tensor) -> torch.Tensor:
        """The logit from the embedded inputs (:meth:`features`): what attributions integrate."""
        if self.adapter is not None:
            f = f.unsqueeze(1) * self.adapter
        h = self.mlp(f)
        z = self.head(h) if self.adapter is None else (h * self.head.weight).sum(-1) + self.head.bias
        if self.k == 1:
            return z.squeeze(-1)
        p = torch.sigmoid(z).mean(-1).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)


#: points of the integral in :meth:`DeepLearner.contributions`
IG_STEPS = 32


class DeepLearner(Learner):
    """Fits :class:`TabularNet`; early stopping on validation log-loss with ``patience`` epochs."""

    name = "deep"

    def __init__(
        self,
        *,
        dim: int = 16,
        hidden: tuple[int, ...] = (256, 128),
        dropout: float = 0.15,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int | None = None,
        max_epochs: int = 60,
        patience: int = 6,
        k: int = 1,
    ) -> None:
        self.dim, self.hidden, self.dropout, self.k = dim, tuple(hidden), dropout, k
        self.lr, self.weight_decay = lr, weight_decay
        self.batch_size, self.max_epochs, self.patience = batch_size, max_epochs, patience
        self.net_: TabularNet | None = None
        self.cards_: list[int] = []
        self.n_num_: int = 0

    def _build(self) -> TabularNet:
        return TabularNet(self.n_num_, self.cards_, self.dim, self.hidden, self.dropout, self.k)

    def fit(
        self, train: Inputs, valid: Inputs | None, ctx: FitContext, rounds: int | None = None
    ) -> DeepLearner:
        self.threads = max(ctx.threads, 1)
        torch.set_num_threads(self.threads)
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        self.n_num_ = train.dense.shape[1]
        self.cards_ = list(ctx.cat_cardinalities)
        net = self._build()
        if ctx.pretrained:
            from winnow.models.pretrain import architecture_key

            weights = ctx.pretrained.get(architecture_key(self.n_num_, self.cards_, self.dim, self.hidden))
            if weights is not None:
                missing = net.load_state_dict(weights, strict=False)
                assert not missing.unexpected_keys, missing.unexpected_keys
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.BCEWithLogitsLoss()
        xn = torch.from_numpy(np.ascontiguousarray(train.dense, dtype=np.float32))
        xc = torch.from_numpy(np.ascontiguousarray(train.m.cat, dtype=np.int64))
        assert train.y is not None
        yt = torch.from_numpy(train.y.astype(np.float32))
        n = len(yt)
        bs = self.batch_size or int(min(1024, max(128, 2 ** round(math.log2(max(n, 1) / 64)))))
        epochs = rounds or self.max_epochs
        best_loss, best_state, best_epoch, bad = math.inf, None, 0, 0
        t_epoch = 0.0
        for epoch in range(1, epochs + 1):
            if ctx.seconds_left() < t_epoch:
                break
            t0 = time.monotonic()
            net.train()
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, bs):
                idx = perm[i : i + bs]
                if len(idx) < 2:
                    continue
                opt.zero_grad(set_to_none=True)
                # every member learns on its own loss (for k = 1: the plain log-loss)
                z = net.member_logits(xn[idx], xc[idx])
                loss = loss_fn(z, yt[idx].unsqueeze(1).expand_as(z))
                loss.backward()
                opt.step()
            t_epoch = time.monotonic() - t0
            if valid is None or rounds is not None:
                best_epoch = epoch
                continue
            vloss = self._loss(net, valid, ctx, epoch)
            if vloss < best_loss - 1e-5:
                best_loss, best_epoch, bad = vloss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.net_ = net
        self.best_rounds_ = max(best_epoch, 1)
        return self

    @staticmethod
    def _loss(net: TabularNet, x: Inputs, ctx: FitContext | None = None, epoch: int = 0) -> float:
        net.eval()
        with torch.no_grad():
            z = _forward_batched(net, x)
        y = torch.from_numpy(x.y.astype(np.float32))  # type: ignore[union-attr]
        if ctx is not None and ctx.report is not None:
            from sklearn.metrics import average_precision_score

            ctx.report(epoch, float(average_precision_score(x.y, z.numpy())))
        return float(nn.functional.binary_cross_entropy_with_logits(z, y))

    def predict_logit(self, x: Inputs) -> np.ndarray:
        if self.net_ is None:
            raise NotFittedError(type(self).__name__)
        assert self.net_ is not None
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        with torch.no_grad():
            return _forward_batched(self.net_, x).numpy().astype(np.float64)

    def contributions(self, x: Inputs, steps: int = IG_STEPS) -> tuple[np.ndarray, np.ndarray]:
        """Integrated gradients of the logit over the embedded inputs, from the all-zero embedding
        (Sundararajan et al., 2017), summed per input column: (dense columns (n, d), categorical
        features (n, q)). They add up to the logit minus the zero embedding's logit (a constant),
        up to the midpoint rule's error over ``steps`` points (tests/test_explanations.py)."""
        net = self.net_
        if net is None:
            raise NotFittedError(type(self).__name__)
        net.eval()
        d, q = x.dense.shape[1], x.m.cat.shape[1]
        dense, cat = np.zeros((len(x), d)), np.zeros((len(x), q))
        for i in range(0, len(x), 1024):
            xn = torch.from_numpy(np.ascontiguousarray(x.dense[i : i + 1024], dtype=np.float32))
            xc = torch.from_numpy(np.ascontiguousarray(x.m.cat[i : i + 1024], dtype=np.int64))
            with torch.no_grad():
                f = net.features(xn, xc)
            grads = torch.zeros_like(f)
            for k in range(steps):
                point = (f * ((k + 0.5) / steps)).requires_grad_(True)
                grads += torch.autograd.grad(net.logit_of_features(point).sum(), point)[0]
            attr = (f * grads / steps).detach().numpy().astype(np.float64).reshape(len(f), d + q, -1).sum(-1)
            dense[i : i + len(f)], cat[i : i + len(f)] = attr[:, :d], attr[:, d:]
        return dense, cat

    def expected_logit(self) -> float:
        """The logit of the all-zero embedding: the base value of :meth:`contributions`."""
        assert self.net_ is not None
        width = (self.n_num_ + len(self.cards_)) * self.dim
        with torch.no_grad():
            return float(self.net_.logit_of_features(torch.zeros(1, width))[0])

    def inference_cost(self) -> float:
        # ~0.045 ns per parameter and ensemble member: each row runs the shared layers k times
        if self.net_ is None:
            return 10.0
        return 1.0 + 0.000045 * sum(p.numel() for p in self.net_.parameters()) * max(self.k, 1)

    def embed(self, x: Inputs) -> np.ndarray:
        """The last hidden layer for each row: the network's learned features, float32 (n, h)."""
        assert self.net_ is not None
        out = []
        with torch.no_grad():
            for i in range(0, len(x), 8192):
                xn = torch.from_numpy(np.ascontiguousarray(x.dense[i : i + 8192], dtype=np.float32))
                xc = torch.from_numpy(np.ascontiguousarray(x.m.cat[i : i + 8192], dtype=np.int64))
                out.append(self.net_.embed(xn, xc).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.hidden[-1]), np.float32)

    def state(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        from safetensors.torch import save

        assert self.net_ is not None
        cfg = {
            "dim": self.dim,
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "k": self.k,
            "n_num": self.n_num_,
            "cards": self.cards_,
            "best_rounds": self.best_rounds_,
        }
        tensors = {k: v.contiguous() for k, v in self.net_.state_dict().items()}
        return cfg, {"safetensors": save(tensors, metadata={"config": json.dumps(cfg)})}

    @classmethod
    def from_state(cls, config: dict[str, Any], files: dict[str, bytes]) -> DeepLearner:
        from safetensors.torch import load

        obj = cls(
            dim=config["dim"],
            hidden=tuple(config["hidden"]),
            dropout=config["dropout"],
            lr=config["lr"],
            weight_decay=config["weight_decay"],
            batch_size=config["batch_size"],
            max_epochs=config["max_epochs"],
            patience=config["patience"],
            k=config.get("k", 1),
        )
        obj.n_num_, obj.cards_ = config["n_num"], list(config["cards"])
        obj.best_rounds_ = config.get("best_rounds")
        net = obj._build()
        net.load_state_dict(load(files["safetensors"]))
        net.eval()
        obj.net_ = net
        return obj


def _forward_batched(net: TabularNet, x: Inputs, batch: int = 8192) -> torch.Tensor:
    outs = []
    for i in range(0, len(x), batch):
        xn = torch.from_numpy(np.ascontiguousarray(x.dense[i : i + batch], dtype=np.float32))
        xc = torch.from_numpy(np.ascontiguousarray(x.m.cat[i : i + batch], dtype=np.int64))
        outs.append(net(xn, xc))
    return torch.cat(outs) if outs else torch.zeros(0)
