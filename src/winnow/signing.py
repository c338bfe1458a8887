"""Signed artifacts: an Ed25519 signature over ``manifest.json``, checked before anything loads.

The checksums in the manifest catch accidental changes; anyone who can write the folder can
recompute them. A signature proves who wrote the artifact: ``winnow fit --sign-key KEY`` writes
``manifest.sig`` next to the manifest (the manifest carries the sha256 of every other file, so
signing it signs them all), and ``--verify-key PUB`` on ``score``, ``screen``, ``serve`` and
``stream`` refuses an artifact whose signature is missing or does not verify.

Keys are the PEM files OpenSSL writes::

    openssl genpkey -algorithm ed25519 -out winnow-sign.pem        # private: keep it secret
    openssl pkey -in winnow-sign.pem -pubout -out winnow-sign.pub  # public: give it to servers

``manifest.sig`` is JSON: ``{"algorithm": "ed25519", "public_key": <base64>, "signature":
<base64>}``; the public key is there to name which key signed, never to verify with.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from winnow.errors import ArtifactError, ConfigError

SIGNATURE_FILE = "manifest.sig"
ALGORITHM = "ed25519"
_KEYGEN = "Make one: openssl genpkey -algorithm ed25519 -out KEY.pem"
_PUBGEN = "Make it: openssl pkey -in KEY.pem -pubout -out KEY.pub"


def _load(path: Path, option: str, private: bool) -> Any:
    from winnow.extras import require

    require("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    kind, hint = (
        ("an unencrypted Ed25519 PEM private key", _KEYGEN)
        if private
        else ("an Ed25519 PEM public key", _PUBGEN)
    )
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(option, str(path), f"a readable file ({e.strerror or e})", hint) from e
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (ValueError, TypeError) as e:
        raise ConfigError(option, str(path), kind, f"It could not be read ({e}). {hint}") from e
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise ConfigError(option, str(path), kind, f"It holds a {type(key).__name__}. {hint}")
    return key


def load_private_key(path: Path, option: str = "--sign-key") -> Any:
    """An Ed25519 private key from a PEM file (PKCS#8, as OpenSSL writes it)."""
    return _load(path, option, private=True)


def load_public_key(path: Path, option: str = "--verify-key") -> Any:
    """An Ed25519 public key from a PEM file (SubjectPublicKeyInfo, as OpenSSL writes it)."""
    return _load(path, option, private=False)


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def signature_file(manifest_bytes: bytes, key: Any) -> bytes:
    """The contents of ``manifest.sig`` for these manifest bytes, signed with ``key``."""
    body = {
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(_raw_public(key.public_key())).decode(),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode(),
    }
    return (json.dumps(body, indent=2) + "\n").encode()


def check_signature(folder: Path, manifest_bytes: bytes, key: Any) -> None:
    """Refuse (:class:`ArtifactError`) unless ``manifest.sig`` holds ``key``'s signature of
    exactly these manifest bytes."""
    from cryptography.exceptions import InvalidSignature

    fix = (
        "Use the artifact its signer published, or have it signed again: winnow sign ARTIFACT --key KEY.pem."
    )
    sig_path = Path(folder) / SIGNATURE_FILE
    if not sig_path.is_file():
        raise ArtifactError(
            folder, f"is not signed ({SIGNATURE_FILE} is missing) and a verify key was given", fix
        )
    try:
        body = json.loads(sig_path.read_text())
        if body.get("algorithm") != ALGORITHM:
            raise ValueError(f"algorithm {body.get('algorithm')!r}, expected {ALGORITHM!r}")
        signature = base64.b64decode(body["signature"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise ArtifactError(folder, f"{SIGNATURE_FILE} is not a winnow signature ({e})", fix) from e
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise ArtifactError(
            folder, "signature does not verify with the given key (signed by another key, or modified)", fix
        ) from None
