"""The on-disk screener: a folder with ``manifest.json`` and files that cannot run code.

Layout (format version 1)::

    manifest.json            versions, config, schema, fusion, threshold, metrics, file hashes
    preprocess.json          fitted preprocessing state
    evaluation.safetensors   the held-out test rows' labels and scores (for reports and curves)
    monitor.json             the reference profile drift monitoring compares live data with
    models/lightgbm.txt      LightGBM text model
    models/linear.json       logistic-regression weights
    models/deep.safetensors  network weights (config in the manifest)

``manifest.json`` carries the sha256 of every other file and a checksum of its own content
(and ``manifest.sig``, when signed, an Ed25519 signature of it: :mod:`winnow.signing`);
:func:`read_artifact` verifies all of them before anything is built, and refuses unknown
formats, newer format versions and unknown model types.

Bumping ``FORMAT_VERSION``: add a function to ``_MIGRATIONS`` that turns a manifest of the old
version into the new one, keep an artifact of the old version under ``tests/data/`` and a test
that loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from winnow.errors import ArtifactError

FORMAT = "winnow-screener"
FORMAT_VERSION = 1
# old format version -> function upgrading its manifest by one version
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def to_json_value(obj: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays become plain Python values."""
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in an artifact")


def dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, default=to_json_value, **kwargs)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_version(manifest: dict[str, Any]) -> str:
    """A short id for an artifact version: the hash of its manifest (fit time included); what
    the service reports as ``model_version``, retraining as the parent version, and reviews
    carry."""
    return sha256_bytes(dumps(manifest, sort_keys=True).encode())[:12]


def _canonical(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sealed(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with the checksum of its own content (every key but ``checksum``)."""
    return {**manifest, "checksum": sha256_bytes(_canonical(manifest))}


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 4 MiB chunks (files larger than memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, manifest: dict[str, Any], fix: str, *, keep: bool = True) -> dict[str, bytes]:
    """Check a folder against its manifest: the manifest's own checksum, then every listed file
    (inside the folder, present, matching its sha256). Returns the files' bytes (``keep``) or
    nothing (large files are hashed in chunks instead). The one verifier of artifacts and
    vector indexes; ``fix`` is the hint their errors give."""
    if manifest.get("checksum") != sha256_bytes(_canonical(manifest)):
        raise ArtifactError(path, "manifest.json was modified after it was written (checksum mismatch)", fix)
    files: dict[str, bytes] = {}
    root = path.resolve()
    for rel, digest in manifest.get("files", {}).items():
        fpath = (path / rel).resolve()
        if root not in fpath.parents:
            raise ArtifactError(path, f"file entry {rel!r} points outside the artifact folder")
        if not fpath.is_file():
            raise ArtifactError(path, f"file {rel!r} listed in the manifest is missing", fix)
        data = fpath.read_bytes() if keep else None
        if (sha256_bytes(data) if data is not None else sha256_file(fpath)) != digest:
            raise ArtifactError(path, f"file {rel!r} does not match its sha256 (corrupted or tampered)", fix)
        if data is not None:
            files[rel] = data
    return files


def replace_folder(tmp: Path, path: Path) -> None:
    """Put the finished folder ``tmp`` in place of ``path`` (renames: never a half-written one)."""
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@dataclass
class ArtifactContents:
    manifest: dict[str, Any]
    files: dict[str, bytes]


def write_artifact(
    path: Path, manifest: dict[str, Any], files: dict[str, bytes], sign_key: Path | None = None
) -> None:
    """Write atomically: build in a sibling temp folder, then rename over ``path``. With
    ``sign_key`` (an Ed25519 PEM private key) ``manifest.sig`` is written too."""
    key = None
    if sign_key is not None:
        from winnow.signing import load_private_key

        key = load_private_key(sign_key)  # a bad key fails before anything is written
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        hashes = {}
        for rel, data in sorted(files.items()):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            hashes[rel] = sha256_bytes(data)
        manifest = sealed({**manifest, "format": FORMAT, "format_version": FORMAT_VERSION, "files": hashes})
        manifest_bytes = dumps(manifest, indent=2).encode()
        (tmp / "manifest.json").write_bytes(manifest_bytes)
        if key is not None:
            from winnow.signing import SIGNATURE_FILE, signature_file

            (tmp / SIGNATURE_FILE).write_bytes(signature_file(manifest_bytes, key))
        replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_artifact(path: Path, verify_key: Path | None = None) -> ArtifactContents:
    """Read and verify an artifact folder; raises :class:`ArtifactError` on any problem. With
    ``verify_key`` (an Ed25519 PEM public key) the folder must also carry that key's signature
    of its manifest."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not path.is_dir():
        raise ArtifactError(path, "is not a folder", "Pass the folder written by `winnow fit --out`.")
    if not mpath.exists():
        raise ArtifactError(path, "has no manifest.json", "Is this a winnow artifact folder?")
    manifest_bytes = mpath.read_bytes()
    if verify_key is not None:  # before the manifest is even parsed
        from winnow.signing import check_signature, load_public_key

        check_signature(path, manifest_bytes, load_public_key(verify_key))
    try:
        manifest = json.loads(manifest_bytes.decode())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(path, f"manifest.json is not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(path, f"manifest.json is not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError(path, "manifest.json has no format_version")
    if version > FORMAT_VERSION:
        raise ArtifactError(
            path,
            f"format version {version} is newer than this winnow reads ({FORMAT_VERSION})",
            "Upgrade winnow: pip install -U winnow.",
        )
    files = verify(path, manifest, "Refit, or restore the original artifact.")
    while version < FORMAT_VERSION:
        if version not in _MIGRATIONS:
            raise ArtifactError(
                path,
                f"format version {version} is not one this winnow can read",
                f"Supported: {sorted([*_MIGRATIONS, FORMAT_VERSION])}.",
            )
        manifest = _MIGRATIONS[version](manifest)
        version = manifest["format_version"]
    kinds = {
        name: (e.get("kind", name) if isinstance(e, dict) else name)
        for name, e in manifest.get("models", {}).items()
    }
    from winnow.models.base import LEARNER_KINDS  # a member's kind (format 1 without one: its name)

    unknown = [k for k in kinds.values() if k not in LEARNER_KINDS]
    if unknown:
        raise ArtifactError(path, f"unknown model types {unknown}", "Upgrade winnow.")
    return ArtifactContents(manifest=manifest, files=files)


def sign_artifact(path: Path, key_file: Path, option: str = "--key") -> Path:
    """Sign an existing artifact folder (verified first: only an intact one is signed); returns
    the ``manifest.sig`` written."""
    from winnow.signing import SIGNATURE_FILE, load_private_key, signature_file

    key = load_private_key(key_file, option)
    read_artifact(path)
    manifest_bytes = (Path(path) / "manifest.json").read_bytes()
    target = Path(path) / SIGNATURE_FILE
    tmp = target.with_name(f".{SIGNATURE_FILE}.tmp")
    tmp.write_bytes(signature_file(manifest_bytes, key))
    tmp.replace(target)
    return target
