"""Image columns as numeric features: a CNN's embedding of each image, fitted with preprocessing.

Three ways to embed, one per :class:`ImageEmbedder` ``kind``:

* ``cnn`` (the default when labels are given): a small CNN (four conv/BatchNorm/ReLU blocks,
  global average pooling, a 64-wide embedding layer) is trained on the labelled training images
  to predict the screening target, early-stopped on a held-out part of them; its embedding layer
  becomes features every model sees.
* ``resnet18``: a ResNet-18 built here in plain torch, with parameter names equal to
  torchvision's, loads the user's local safetensors file (for example torchvision's ImageNet
  weights converted once with ``safetensors.torch.save_file(model.state_dict(), path)``) and is
  used frozen: its 512 global-pooled features are the embedding. Nothing is downloaded.
* ``pixels`` (when no labels are given, as in the data-quality tools): the image in grey at
  8 x 8, 64 numbers in [0, 1]; no learning.

The fitted weights are stored with the other preprocessing arrays (safetensors, checksummed by
the artifact) and replayed at screening in batches, with torch's threads.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from winnow.errors import ConfigError, NotFittedError
from winnow.io.images import decode_batch

KINDS = ("cnn", "resnet18", "pixels")
#: default side images are resized to, per kind
DEFAULT_SIZE = {"cnn": 32, "resnet18": 224, "pixels": 8}
#: ImageNet channel statistics, which the pretrained ResNet weights expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: images per forward pass at screening
BATCH = 256


def _torch() -> Any:
    import torch

    return torch


def small_cnn(dim: int = 64, width: int = 32) -> Any:
    """The default learned embedder: conv blocks -> global average pool -> ``dim`` -> logit."""
    from torch import nn

    class SmallCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            chans = [3, width, 2 * width, 2 * width, 4 * width]
            blocks: list[nn.Module] = []
            for i in range(4):
                blocks += [
                    nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                    nn.BatchNorm2d(chans[i + 1]),
                    nn.ReLU(inplace=True),
                ]
                if i < 3:
                    blocks.append(nn.MaxPool2d(2))
            self.conv = nn.Sequential(*blocks)
            self.embedding = nn.Sequential(nn.Linear(4 * width, dim), nn.ReLU(inplace=True))
            self.dropout = nn.Dropout(0.2)
            self.head = nn.Linear(dim, 1)

        def embed(self, x: Any) -> Any:
            return self.embedding(self.conv(x).mean(dim=(2, 3)))

        def forward(self, x: Any) -> Any:
            return self.head(self.dropout(self.embed(x))).squeeze(-1)

    return SmallCNN()


def resnet18() -> Any:
    """ResNet-18 (He et al., 2016) with torchvision's parameter names; ``embed`` gives the 512
    global-pooled features (the classifier ``fc`` is not built: weights files may carry it)."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample: nn.Module | None = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x: Any) -> Any:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            widths, cin = (64, 128, 256, 512), 64
            for i, w in enumerate(widths):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
                cin = w

        def embed(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return x.mean(dim=(2, 3))

    return ResNet18()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_weights(path: str | Path) -> dict[str, Any]:
    """The ResNet-18 tensors of a local safetensors file, checked against the architecture.

    Raises :class:`ConfigError` naming the file and the first missing or mis-shaped tensor.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("image_weights", str(path), "an existing safetensors file of ResNet-18 weights")
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError("image_weights", str(path), "a safetensors file", f"It cannot be read: {e}") from e
    expected = resnet18().state_dict()
    # BatchNorm's step counter is not needed at inference; some exports leave it out
    missing = [k for k in expected if k not in tensors and not k.endswith("num_batches_tracked")]
    if missing:
        raise ConfigError(
            "image_weights",
            str(path),
            "ResNet-18 weights with torchvision's parameter names",
            f"{len(missing)} tensors are missing, e.g. {missing[0]!r}; the file has "
            f"{len(tensors)} tensors, e.g. {sorted(tensors)[:3]}.",
        )
    tensors = {k: tensors.get(k, v) for k, v in expected.items()}
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise ConfigError(
                "image_weights",
                str(path),
                "ResNet-18 weights",
                f"tensor {k!r} has shape {tuple(tensors[k].shape)}, ResNet-18 needs {tuple(v.shape)}.",
            )
    return {k: tensors[k].to(v.dtype) for k, v in expected.items()}


class ImageEmbedder:
    """Turns an image column (resolved paths or bytes, as typed by :func:`winnow.schema.coerce`)
    into a float32 embedding per row; a missing image gives a row of NaN.

    Parameters
    ----------
    weights : local safetensors file of ResNet-18 weights; set = ``resnet18`` kind.
    size : side images are resized to (default: 32 for the CNN, 224 for the ResNet).
    dim : width of the learned CNN embedding.
    max_epochs, patience : CNN training length and early-stopping patience (epochs).
    valid_fraction : share of the labelled training images held out for early stopping.

    >>> import pyarrow as pa
    >>> emb = ImageEmbedder().fit(pa.array([None, None], pa.string()), None)
    >>> emb.kind_, emb.transform(pa.array([None], pa.string())).shape
    ('pixels', (1, 64))
    """

    def __init__(
        self,
        *,
        weights: str | Path | None = None,
        size: int | None = None,
        dim: int = 64,
        max_epochs: int = 30,
        patience: int = 5,
        batch_size: int = 64,
        lr: float = 3e-3,
        valid_fraction: float = 0.2,
    ) -> None:
        self.weights = None if weights is None else str(weights)
        self.size = size
        self.dim = dim
        self.max_epochs, self.patience, self.batch_size, self.lr = max_epochs, patience, batch_size, lr
        self.valid_fraction = valid_fraction
        self.threads = 1
        self.kind_: str | None = None
        self.size_: int = 0
        self.mean_: list[float] = []
        self.std_: list[float] = []
        self.net_: Any = None
        self.weights_sha256_: str | None = None
        #: training log of the CNN: epochs run, best epoch, validation loss
        self.history_: dict[str, Any] = {}
        # embeddings of the last ``remember=True`` call, served once to the next call (fitting
        # embeds the training rows, then the whole table: each image is embedded once)
        self._memo: dict[Any, np.ndarray] | None = None

    # ------------------------------------------------------------------ fitting
    @property
    def width(self) -> int:
        """Number of features per image."""
        return {"cnn": self.dim, "resnet18": 512, "pixels": 64}[self._kind()]

    def _kind(self) -> str:
        if self.kind_ is None:
            raise NotFittedError("ImageEmbedder")
        return self.kind_

    def fit(
        self, images: pa.Array, y: np.ndarray | None, *, seed: int = 0, threads: int = 1
    ) -> ImageEmbedder:
        """Fit on a column of training images and their 0/1 labels (``None``: no labels)."""
        self.threads = max(int(threads), 1)
        if self.weights is not None:
            self.kind_ = "resnet18"
        elif y is None:
            self.kind_ = "pixels"
        else:
            self.kind_ = "cnn"
        self.size_ = self.size or DEFAULT_SIZE[self.kind_]
        if self.kind_ == "pixels":
            self.size_ = DEFAULT_SIZE["pixels"]
            return self
        torch = _torch()
        torch.set_num_threads(self.threads)
        if self.kind_ == "resnet18":
            assert self.weights is not None
            net = resnet18()
            net.load_state_dict(load_weights(self.weights))
            self.weights_sha256_ = _sha256(Path(self.weights).expanduser())
            self.mean_, self.std_ = list(IMAGENET_MEAN), list(IMAGENET_STD)
            self.net_ = net.eval()
            return self
        assert y is not None
        self._fit_cnn(images, np.asarray(y), seed)
        return self

    def _fit_cnn(self, images: pa.Array, y: np.ndarray, seed: int) -> None:
        import torch
        from torch import nn

        pixels, ok = decode_batch(_values(images), self.size_)
        rows = np.flatnonzero(ok)
        x_all, y_all = pixels[rows], y[rows].astype(np.float32)
        if len(rows) == 0:
            raise ConfigError(
                "image column",
                "no readable images",
                "labelled training images to learn from",
                "Check the paths, or drop the column.",
            )
        x = torch.from_numpy(x_all).permute(0, 3, 1, 2).float().div_(255.0)
        self.mean_ = x.mean(dim=(0, 2, 3)).tolist()
        self.std_ = [max(s, 1e-3) for s in x.std(dim=(0, 2, 3)).tolist()]
        x = (x - torch.tensor(self.mean_).view(1, 3, 1, 1)) / torch.tensor(self.std_).view(1, 3, 1, 1)
        yt = torch.from_numpy(y_all)
        train, valid = _holdout(y_all, self.valid_fraction, seed)
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = small_cnn(self.dim)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.max_epochs)
        loss_fn = nn.BCEWithLogitsLoss()
        best, best_state, best_epoch, bad, epoch = math.inf, None, 0, 0, 0
        tr = torch.from_numpy(train)
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            perm = tr[torch.randperm(len(tr), generator=gen)]
            for i in range(0, len(perm), self.batch_size):
                idx = perm[i : i + self.batch_size]
                if len(idx) < 2:  # BatchNorm needs two images
                    continue
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x[idx]), yt[idx])
                loss.backward()
                opt.step()
            sched.step()
            if valid is None:
                best_epoch = epoch
                continue
            net.eval()
            with torch.no_grad():
                vi = torch.from_numpy(valid)
                vloss = float(loss_fn(_batched(net, x[vi], "forward"), yt[vi]))
            if vloss < best - 1e-5:
                best, best_epoch, bad = vloss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.net_ = net.eval()
        self.history_ = {
            "epochs": epoch,
            "best_epoch": best_epoch,
            "valid_loss": None if valid is None else round(best, 5),
            "train_images": len(train),
            "valid_images": 0 if valid is None else len(valid),
        }

    # ------------------------------------------------------------------ embedding
    def transform(self, images: pa.Array, *, remember: bool = False) -> np.ndarray:
        """float32 (n, width): each image's embedding; NaN rows where the image is missing.

        ``remember``: keep these embeddings for the next call only (by path or bytes), which then
        embeds just the images it has not seen."""
        values = _values(images)
        memo, self._memo = self._memo, None
        out = np.full((len(values), self.width), np.nan, dtype=np.float32)
        todo = []
        for i, v in enumerate(values):
            if memo is not None and v is not None and v in memo:
                out[i] = memo[v]
            else:
                todo.append(i)
        if todo:
            out[todo] = self._embed([values[i] for i in todo])
        if remember:
            known = ~np.isnan(out[:, 0])
            self._memo = {v: out[i] for i, v in enumerate(values) if v is not None and known[i]}
        return out

    def _embed(self, values: list[Any]) -> np.ndarray:
        kind = self._kind()
        out = np.full((len(values), self.width), np.nan, dtype=np.float32)
        if kind == "pixels":
            pixels, ok = decode_batch(values, self.size_)
            grey = pixels.astype(np.float32).mean(axis=3).reshape(len(values), -1) / 255.0
            out[ok] = grey[ok]
            return out
        torch = _torch()
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        mean = torch.tensor(self.mean_).view(1, 3, 1, 1)
        std = torch.tensor(self.std_).view(1, 3, 1, 1)
        for start in range(0, len(values), BATCH):
            pixels, ok = decode_batch(values[start : start + BATCH], self.size_)
            rows = np.flatnonzero(ok)
            if not len(rows):
                continue
            x = torch.from_numpy(pixels[rows]).permute(0, 3, 1, 2).float().div_(255.0)
            with torch.no_grad():
                emb = self.net_.embed((x - mean) / std)
            out[start + rows] = emb.numpy()
        return out

    # ------------------------------------------------------------------ state
    def to_json(self) -> dict[str, Any]:
        kind = self._kind()
        return {
            "kind": kind,
            "size": self.size_,
            "dim": self.dim,
            "mean": self.mean_,
            "std": self.std_,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256_,
            "history": self.history_,
        }

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The network's tensors (none for ``pixels``), for safetensors."""
        if self.net_ is None:
            return {}
        return {f"{prefix}.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    @classmethod
    def from_state(cls, d: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> ImageEmbedder:
        if d.get("kind") not in KINDS:
            raise ValueError(f"unknown image embedder kind {d.get('kind')!r}")
        obj = cls(weights=d.get("weights"), size=d["size"], dim=d["dim"])
        obj.kind_, obj.size_ = d["kind"], d["size"]
        obj.mean_, obj.std_ = list(d["mean"]), list(d["std"])
        obj.weights_sha256_, obj.history_ = d.get("weights_sha256"), d.get("history", {})
        if obj.kind_ != "pixels":
            torch = _torch()
            net = small_cnn(obj.dim) if obj.kind_ == "cnn" else resnet18()
            state = {
                k[len(prefix) + 1 :]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith(prefix + ".")
            }
            net.load_state_dict(state)
            obj.net_ = net.eval()
        return obj


def _values(images: pa.Array | pa.ChunkedArray) -> list[Any]:
    if isinstance(images, pa.ChunkedArray):
        images = images.combine_chunks()
    return images.to_pylist()


def _holdout(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(train, valid) positions; no validation part when a class is too rare to split."""
    idx = np.arange(len(y))
    pos = int(y.sum())
    if min(pos, len(y) - pos) < 4 or len(y) < 20:
        return idx, None
    from sklearn.model_selection import train_test_split

    a, b = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(a), np.sort(b)


def _batched(net: Any, x: Any, method: str, batch: int = BATCH) -> Any:
    torch = _torch()
    fn = getattr(net, method)
    outs = [fn(x[i : i + batch]) for i in range(0, len(x), batch)]
    return torch.cat(outs) if outs else torch.zeros(0)
