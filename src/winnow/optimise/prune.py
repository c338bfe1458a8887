"""Structured pruning of the deep network: whole hidden units go, the layers get narrower.

Zeroing weights saves nothing on a CPU; removing units makes every matrix product smaller. For
each hidden layer the units are ranked by how much they can move the next layer: the standard
deviation of the unit's activation on the data sample times the L2 norm of its outgoing weights.
A unit whose activation barely varies carries almost no information: its *mean* contribution is
folded into the next layer's bias when it is removed, so only its variation is lost.

Works on the learner's own state (safetensors tensors + JSON config) and rebuilds the learner
with :meth:`DeepLearner.from_state`, so the artifact round-trips the new widths. Relies on the
network contract: ``net.mlp`` is a Sequential of ``[Linear, ReLU, Dropout]`` blocks, ``net.head``
a ``Linear(width_last, k)`` (``k`` members, averaged; ``k`` missing means 1); for ``k > 1`` the
hidden activations carry a member axis, (n, k, width).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from winnow.models.base import Inputs, Learner


def _linear_positions(net: Any) -> list[int]:
    from torch import nn

    pos = [i for i, m in enumerate(net.mlp) if isinstance(m, nn.Linear)]
    if not pos:
        raise ValueError("the network has no hidden Linear layers to prune")
    return pos


def _activations(net: Any, x: Inputs, positions: list[int], rows: int = 4096) -> list[np.ndarray]:
    """Post-ReLU activations of each hidden layer on (up to ``rows``) sample rows:
    (n, width), or (n, k, width) for an ensemble network."""
    import torch

    seen: dict[int, torch.Tensor] = {}
    hooks = [
        net.mlp[i].register_forward_hook(lambda _m, _inp, out, i=i: seen.__setitem__(i, torch.relu(out)))
        for i in positions
    ]
    try:
        n = min(len(x), rows)
        xn = torch.from_numpy(np.ascontiguousarray(x.dense[:n], dtype=np.float32))
        xc = torch.from_numpy(np.ascontiguousarray(x.m.cat[:n], dtype=np.int64))
        was_training = net.training
        net.eval()
        with torch.no_grad():
            net(xn, xc)
        net.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return [seen[i].numpy().astype(np.float64) for i in positions]


def prune_deep(learner: Learner, x: Inputs, fraction: float) -> tuple[Learner, dict[str, Any]]:
    """A new deep learner with ``fraction`` of the units of every hidden layer removed.

    Returns (learner, detail) where detail records the widths before and after.
    """
    import torch
    from safetensors.torch import load, save

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"pruning fraction must be in (0, 1), got {fraction}")
    net = learner.net_  # type: ignore[attr-defined]
    k = int(getattr(net, "k", 1) or 1)
    positions = _linear_positions(net)
    acts = _activations(net, x, positions)
    cfg, files = learner.state()
    tensors: dict[str, torch.Tensor] = {n: t.clone() for n, t in load(files["safetensors"]).items()}
    before = [int(tensors[f"mlp.{i}.weight"].shape[0]) for i in positions]
    after = []
    for layer, (i, h) in enumerate(zip(positions, acts, strict=True)):
        nxt = f"mlp.{positions[layer + 1]}" if layer + 1 < len(positions) else "head"
        w_out = tensors[f"{nxt}.weight"].double()  # (out, width)
        width = h.shape[-1]
        flat = h.reshape(-1, width)
        importance = flat.std(axis=0) * w_out.norm(dim=0).numpy()
        keep_n = max(1, round(width * (1.0 - fraction)))
        keep = np.sort(np.argsort(-importance, kind="stable")[:keep_n])
        drop = np.setdiff1d(np.arange(width), keep)
        # fold the removed units' mean contribution into the next layer's bias
        if drop.size:
            if nxt == "head" and k > 1 and h.ndim == 3:
                mean_k = torch.from_numpy(h.mean(axis=0)[:, drop])  # (k, dropped): per member
                shift = (w_out[:, drop] * mean_k).sum(dim=1)
            else:
                mean = torch.from_numpy(flat.mean(axis=0)[drop])
                shift = w_out[:, drop] @ mean
            tensors[f"{nxt}.bias"] = (tensors[f"{nxt}.bias"].double() + shift).float()
        idx = torch.from_numpy(keep)
        tensors[f"mlp.{i}.weight"] = tensors[f"mlp.{i}.weight"][idx].contiguous()
        tensors[f"mlp.{i}.bias"] = tensors[f"mlp.{i}.bias"][idx].contiguous()
        tensors[f"{nxt}.weight"] = tensors[f"{nxt}.weight"][:, idx].contiguous()
        after.append(int(keep_n))
    cfg = {**cfg, "hidden": after}
    pruned = type(learner).from_state(cfg, {"safetensors": save(tensors)})
    pruned.threads = learner.threads
    params_before = sum(p.numel() for p in net.parameters())
    params_after = sum(p.numel() for p in pruned.net_.parameters())  # type: ignore[attr-defined]
    detail = {
        "fraction": fraction,
        "hidden_before": before,
        "hidden_after": after,
        "parameters_before": int(params_before),
        "parameters_after": int(params_after),
    }
    return pruned, detail
