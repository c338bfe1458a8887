"""Signed artifacts: ``fit --sign-key`` / ``sign`` write manifest.sig; ``--verify-key`` refuses
an artifact that is unsigned, signed by another key, or changed after signing (checksums
recomputed, as someone with write access to the folder would)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from winnow import Screener
from winnow.artifact import sealed, sha256_bytes
from winnow.cli import app
from winnow.errors import ArtifactError, ConfigError
from winnow.signing import SIGNATURE_FILE

runner = CliRunner()


def _keypair(folder: Path, name: str) -> tuple[Path, Path]:
    """PEM files as ``openssl genpkey -algorithm ed25519`` / ``openssl pkey -pubout`` write them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    a_priv, a_pub = _keypair(folder, "a")
    b_priv, b_pub = _keypair(folder, "b")
    return {"priv": a_priv, "pub": a_pub, "other_priv": b_priv, "other_pub": b_pub}


@pytest.fixture
def signed(fitted, keys: dict[str, Path], tmp_path: Path) -> Path:
    return fitted.save(tmp_path / "signed", sign_key=keys["priv"])


def test_signed_artifact_loads_with_its_key(signed: Path, keys: dict[str, Path], fitted) -> None:
    body = json.loads((signed / SIGNATURE_FILE).read_text())
    assert body["algorithm"] == "ed25519" and body["signature"] and body["public_key"]
    s = Screener.load(signed, verify_key=keys["pub"])
    assert s.threshold_.value == fitted.threshold_.value
    Screener.load(signed)  # without a key the signature is not needed


def test_unsigned_artifact_is_refused_when_a_key_is_given(artifact_dir: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(ArtifactError, match="is not signed"):
        Screener.load(artifact_dir, verify_key=keys["pub"])


def test_another_keys_signature_is_refused(signed: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(ArtifactError, match="signature does not verify"):
        Screener.load(signed, verify_key=keys["other_pub"])


def test_a_changed_manifest_is_refused_even_with_its_checksum_recomputed(signed: Path, keys) -> None:
    mpath = signed / "manifest.json"
    man = json.loads(mpath.read_text())
    man["threshold"]["value"] = 0.0001  # select everything
    mpath.write_text(json.dumps(sealed(man), indent=2))
    Screener.load(signed)  # the checksums alone no longer catch it
    with pytest.raises(ArtifactError, match="signature does not verify"):
        Screener.load(signed, verify_key=keys["pub"])


def test_a_swapped_model_file_is_refused_even_with_its_hash_recomputed(signed: Path, keys) -> None:
    mpath = signed / "manifest.json"
    man = json.loads(mpath.read_text())
    rel = next(r for r in man["files"] if r.startswith("models/"))
    data = (signed / rel).read_bytes() + b"\n"
    (signed / rel).write_bytes(data)
    man["files"][rel] = sha256_bytes(data)
    mpath.write_text(json.dumps(sealed(man), indent=2))
    with pytest.raises(ArtifactError, match="signature does not verify"):
        Screener.load(signed, verify_key=keys["pub"])


def test_a_damaged_signature_file_is_refused(signed: Path, keys) -> None:
    (signed / SIGNATURE_FILE).write_text('{"algorithm": "rsa", "signature": "x"}')
    with pytest.raises(ArtifactError, match="not a winnow signature"):
        Screener.load(signed, verify_key=keys["pub"])


def test_bad_key_files_are_config_errors(artifact_dir: Path, fitted, keys, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--verify-key.*Ed25519 PEM public key"):
        Screener.load(artifact_dir, verify_key=keys["priv"])  # a private key where a public one goes
    with pytest.raises(ConfigError, match=r"--sign-key.*private key"):
        fitted.save(tmp_path / "x", sign_key=keys["pub"])
    assert not (tmp_path / "x").exists()  # nothing written with a bad key
    with pytest.raises(ConfigError, match="readable file"):
        Screener.load(artifact_dir, verify_key=tmp_path / "missing.pub")


def test_cli_sign_then_score_with_verify_key(artifact_copy: Path, keys, train_frame, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    train_frame.drop(columns=["churn"]).head(50).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    args = ["score", str(artifact_copy), str(data), "--out", str(out), "--verify-key", str(keys["pub"]), "-q"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 4 and "is not signed" in refused.output
    assert runner.invoke(app, ["sign", str(artifact_copy), "--key", str(keys["priv"])]).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0 and out.exists()
    shown = runner.invoke(app, ["inspect", str(artifact_copy), "--verify-key", str(keys["pub"])])
    assert shown.exit_code == 0 and "signature: verified" in shown.output
    other = runner.invoke(app, [*args[:-3], "--verify-key", str(keys["other_pub"]), "-q"])
    assert other.exit_code == 4 and "does not verify" in other.output
    bad_key = runner.invoke(app, ["sign", str(artifact_copy), "--key", str(keys["pub"])])
    assert bad_key.exit_code == 2 and "--key" in bad_key.output


def test_serving_refuses_an_unsigned_reload(signed: Path, artifact_dir: Path, keys) -> None:
    from winnow.serve.registry import ModelRegistry, ReloadRefused

    registry = ModelRegistry(signed, verify_key=keys["pub"])
    served = registry.current.version
    with pytest.raises(ReloadRefused, match="is not signed"):
        registry.reload(artifact_dir)
    assert registry.current.version == served
    with pytest.raises(ReloadRefused, match="is not signed"):
        ModelRegistry(artifact_dir, verify_key=keys["pub"])


def test_serve_and_stream_exit_4_on_an_unsigned_artifact(
    artifact_dir: Path, keys, winnow_exe: str, tmp_path
) -> None:
    for cmd in (
        [winnow_exe, "serve", str(artifact_dir), "--port", "1", "--verify-key", str(keys["pub"])],
        [
            winnow_exe,
            "stream",
            str(artifact_dir),
            "--source",
            "redis://127.0.0.1:1/0",
            "--stream",
            "orders",
            "--sink",
            f"duckdb:{tmp_path / 'sink.duckdb'}",
            "--verify-key",
            str(keys["pub"]),
        ],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 4, (cmd[1], proc.stderr[-2000:])
        assert "is not signed" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_keys_made_by_openssl_work(fitted, tmp_path: Path) -> None:
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    Screener.load(fitted.save(tmp_path / "s", sign_key=key), verify_key=pub)
