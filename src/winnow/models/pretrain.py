"""Self-supervised pretraining of the deep network's encoder on unlabelled rows (SCARF).

Massive data usually comes with few labels. SCARF (Bahri et al., 2022) learns the encoder from
every row, labelled or not: each row is paired with a corrupted view in which a random 60% of
its features are replaced by the same features of other random rows (draws from each feature's
empirical marginal), and the encoder plus a small projection head are trained with the InfoNCE
loss to tell a row's own view apart from the other rows' views in the batch. The encoder (the
feature embeddings and the MLP trunk of :class:`winnow.models.deepnet.TabularNet`) then starts
the supervised fit instead of a random initialisation; the head and, for TabM, the adapters start
fresh.

``pretrain_encoder`` returns the encoder's weights keyed by the network's parameter names;
:class:`winnow.models.deepnet.DeepLearner` loads them when ``FitContext.pretrained`` holds weights
for its architecture (:func:`architecture_key`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from winnow.models.base import FitContext, Inputs

CORRUPTION = 0.6
TEMPERATURE = 1.0
ENCODER_PREFIXES = ("num_emb.", "cat_emb.", "mlp.")


def architecture_key(
    n_num: int, cards: list[int] | tuple[int, ...], dim: int, hidden: tuple[int, ...]
) -> str:
    """What must match for pretrained encoder weights to fit a network."""
    return json_key(n_num, list(cards), dim, list(hidden))


def json_key(*parts: object) -> str:
    import json

    return json.dumps(parts, separators=(",", ":"))


def _corrupt(xn: torch.Tensor, xc: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace a random CORRUPTION share of each row's features by other rows' values."""
    n = xn.shape[0]
    out_n, out_c = xn.clone(), xc.clone()
    if xn.shape[1]:
        mask = torch.rand(xn.shape, generator=gen) < CORRUPTION
        donor = torch.randint(0, n, xn.shape, generator=gen)
        cols = torch.arange(xn.shape[1]).expand_as(donor)
        out_n[mask] = xn[donor[mask], cols[mask]]
    if xc.shape[1]:
        mask = torch.rand(xc.shape, generator=gen) < CORRUPTION
        donor = torch.randint(0, n, xc.shape, generator=gen)
        cols = torch.arange(xc.shape[1]).expand_as(donor)
        out_c[mask] = xc[donor[mask], cols[mask]]
    return out_n, out_c


def _info_nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = nn.functional.normalize(a, dim=1)
    b = nn.functional.normalize(b, dim=1)
    logits = a @ b.T / TEMPERATURE
    target = torch.arange(len(a))
    return (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2


def pretrain_encoder(
    x: Inputs,
    ctx: FitContext,
    *,
    dim: int = 16,
    hidden: tuple[int, ...] = (256, 128),
    dropout: float = 0.15,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    max_rows: int = 200_000,
) -> tuple[str, dict[str, torch.Tensor], dict[str, float]]:
    """SCARF on the rows of ``x`` (labels unused); returns (architecture key, encoder weights,
    a report: rows, epochs, seconds, first and last epoch loss). At most ``max_rows`` rows (a
    seeded sample) are used, and the fit stops at ``ctx``'s deadline."""
    from winnow.models.deepnet import TabularNet

    torch.set_num_threads(max(ctx.threads, 1))
    torch.manual_seed(ctx.seed)
    gen = torch.Generator().manual_seed(ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    idx = np.arange(len(x)) if len(x) <= max_rows else np.sort(rng.choice(len(x), max_rows, replace=False))
    xn = torch.from_numpy(np.ascontiguousarray(x.dense[idx], dtype=np.float32))
    xc = torch.from_numpy(np.ascontiguousarray(x.m.cat[idx], dtype=np.int64))
    cards = list(ctx.cat_cardinalities)
    net = TabularNet(xn.shape[1], cards, dim, hidden, dropout, k=1)
    width = hidden[-1]
    head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
    params = [p for name, p in net.named_parameters() if name.startswith(ENCODER_PREFIXES)]
    opt = torch.optim.AdamW(params + list(head.parameters()), lr=lr, weight_decay=1e-5)
    n = len(idx)
    losses: list[float] = []
    t_start = time.monotonic()
    t_epoch = 0.0
    for _ in range(epochs):
        if ctx.seconds_left() < t_epoch:
            break
        t0 = time.monotonic()
        net.train()
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for i in range(0, n, batch_size):
            b = perm[i : i + batch_size]
            if len(b) < 8:
                continue
            cn, cc = _corrupt(xn[b], xc[b], gen)
            za = head(net.embed(xn[b], xc[b]))
            zb = head(net.embed(cn, cc))
            loss = _info_nce(za, zb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            count += len(b)
        losses.append(total / max(count, 1))
        t_epoch = time.monotonic() - t0
    state = {k: v.detach().clone() for k, v in net.state_dict().items() if k.startswith(ENCODER_PREFIXES)}
    report = {
        "rows": float(n),
        "epochs": float(len(losses)),
        "seconds": round(time.monotonic() - t_start, 2),
        "loss_first": round(losses[0], 4) if losses else math.nan,
        "loss_last": round(losses[-1], 4) if losses else math.nan,
        "loss_chance": round(math.log(min(batch_size, n)), 4),
    }
    return architecture_key(xn.shape[1], cards, dim, hidden), state, report
