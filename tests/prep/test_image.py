"""Image columns: role inference, typing with rejects, the embedders and their saved state."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers import digits_frame
from winnow.config import Role
from winnow.errors import ConfigError, SchemaError
from winnow.prep.image import ImageEmbedder, resnet18
from winnow.prep.preprocessor import Preprocessor
from winnow.schema import ColumnSpec, coerce, infer_role, infer_schema


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory):
    """400 digits as 16x16 PNG files (absolute paths) and their labels (digit 3 = 1)."""
    frame = digits_frame(tmp_path_factory.mktemp("digits"), size=16, n=400)
    return frame, (frame["label"] == "yes").to_numpy().astype(np.int64)


def _png_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


# ---------------------------------------------------------------------- inference
def test_paths_and_bytes_are_inferred_as_images(digits) -> None:
    frame, _ = digits
    paths = pa.chunked_array([pa.array(frame["image"].tolist())])
    assert infer_role("photo", paths) == (Role.IMAGE, "image file paths")
    blobs = pa.chunked_array([pa.array([_png_bytes(p) for p in frame["image"][:30]], pa.binary())])
    assert infer_role("photo", blobs) == (Role.IMAGE, "encoded image bytes")


def test_image_paths_that_do_not_exist_are_ignored_with_the_reason(tmp_path) -> None:
    col = pa.chunked_array([pa.array([f"pics/{i}.jpg" for i in range(60)])])
    role, reason = infer_role("photo", col, image_root=str(tmp_path))
    assert role == Role.IGNORE
    assert "0% of a sample of 20 exist" in reason and str(tmp_path) in reason and "image_root" in reason


def test_other_columns_are_not_images() -> None:
    col = pa.chunked_array([pa.array(["report.pdf", "a.png", "b.txt"] * 20)])
    assert infer_role("file", col)[0] == Role.CATEGORICAL
    blobs = pa.chunked_array([pa.array([b"\x00\x01"] * 30, pa.binary())])
    assert infer_role("blob", blobs)[0] == Role.IGNORE


def test_roles_override_and_root_recorded(digits, tmp_path) -> None:
    frame, _ = digits
    table = pa.table({"photo": frame["image"].tolist()[:30], "y": ["a", "b"] * 15})
    specs = infer_schema(table, target="y", overrides={"photo": Role.IMAGE}, image_root=str(tmp_path))
    assert specs[0].role == Role.IMAGE and specs[0].root == str(tmp_path)
    assert ColumnSpec.from_json(specs[0].to_json()) == specs[0]


# ---------------------------------------------------------------------- typing and rejects
def test_unreadable_images_are_rejected_with_record_column_and_reason(digits, tmp_path) -> None:
    frame, _ = digits
    good = frame["image"][0]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"this is not a png")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(_png_bytes(good)[:60])
    values = [good, str(corrupt), None, str(tmp_path / "missing.png"), str(truncated), good]
    spec = ColumnSpec("photo", Role.IMAGE)
    typed = coerce(pa.table({"photo": values}), [spec], first_row=100)
    assert typed.ok.tolist() == [True, False, True, False, False, True]
    by_row = {r.row: r for r in typed.rejects}
    assert sorted(by_row) == [101, 103, 104]
    assert all(r.column == "photo" for r in typed.rejects)
    assert "not a readable image" in by_row[101].reason and "corrupt.png" in by_row[101].reason
    assert "image file not found" in by_row[103].reason and "missing.png" in by_row[103].reason
    assert "not a readable image" in by_row[104].reason
    assert by_row[101].describe().startswith("record 101, column 'photo': not a readable image")
    # rejected values are left out of the typed column, a missing image stays missing
    assert typed.table.column("photo").to_pylist() == [good, None, None, None, None, good]


def test_corrupt_bytes_are_rejected(digits) -> None:
    frame, _ = digits
    values = [_png_bytes(frame["image"][0]), b"\x89PNG garbage", None]
    typed = coerce(pa.table({"photo": pa.array(values, pa.binary())}), [ColumnSpec("photo", Role.IMAGE)])
    assert typed.ok.tolist() == [True, False, True]
    assert typed.rejects[0].value == "<12 bytes>"


def test_a_column_of_mostly_unreadable_images_is_a_schema_error(tmp_path) -> None:
    values = [str(tmp_path / f"{i}.png") for i in range(30)]
    with pytest.raises(SchemaError, match=r"column 'photo': expected image file paths.*30 of 30 unreadable"):
        coerce(pa.table({"photo": values}), [ColumnSpec("photo", Role.IMAGE)])


def test_relative_paths_resolve_against_the_root_else_the_working_directory(
    digits, tmp_path, monkeypatch
) -> None:
    frame, _ = digits
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png_bytes(frame["image"][0]))
    table = pa.table({"photo": ["a.png"]})
    rooted = coerce(table, [ColumnSpec("photo", Role.IMAGE, root=str(folder))])
    assert rooted.ok.all() and rooted.table.column("photo")[0].as_py() == str(folder / "a.png")
    monkeypatch.chdir(tmp_path)
    unrooted = coerce(table, [ColumnSpec("photo", Role.IMAGE)])
    assert not unrooted.ok.any()
    reason = unrooted.rejects[0].reason
    assert f"relative paths resolve against the working directory {str(tmp_path)!r}" in reason
    assert coerce(pa.table({"photo": ["shots/a.png"]}), [ColumnSpec("photo", Role.IMAGE)]).ok.all()


# ---------------------------------------------------------------------- embedders
def _embedder() -> ImageEmbedder:
    return ImageEmbedder(size=16, max_epochs=4)


def test_cnn_is_seeded_and_its_state_replays_exactly(digits) -> None:
    frame, y = digits
    col = pa.array([*frame["image"].tolist(), None])
    labels = np.append(y, 0)
    a = _embedder().fit(col, labels, seed=3, threads=1)
    b = _embedder().fit(col, labels, seed=3, threads=1)
    ea, eb = a.transform(col), b.transform(col)
    assert a.kind_ == "cnn" and ea.shape == (401, 64)
    assert np.array_equal(ea, eb, equal_nan=True)
    assert np.isnan(ea[-1]).all() and np.isfinite(ea[:-1]).all()
    c = _embedder().fit(col, labels, seed=4, threads=1)
    assert not np.array_equal(ea, c.transform(col), equal_nan=True)
    loaded = ImageEmbedder.from_state(a.to_json(), a.arrays("image.x"), "image.x")
    assert np.array_equal(loaded.transform(col), ea, equal_nan=True)
    assert a.history_["train_images"] == 320 and a.history_["valid_images"] == 80


def test_cnn_embedding_separates_the_classes(digits) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    frame, y = digits
    col = pa.array(frame["image"].tolist())
    emb = ImageEmbedder(size=16, max_epochs=12).fit(col.slice(0, 300), y[:300], seed=0).transform(col)
    clf = LogisticRegression(max_iter=2000).fit(emb[:300], y[:300])
    # images the CNN never saw
    ap = average_precision_score(y[300:], clf.predict_proba(emb[300:])[:, 1])
    assert ap > 0.8, ap


def test_without_labels_images_become_grey_pixel_grids(digits) -> None:
    frame, _ = digits
    col = pa.array(frame["image"].tolist()[:5])
    emb = ImageEmbedder().fit(col, None)
    out = emb.transform(col)
    assert emb.kind_ == "pixels" and out.shape == (5, 64)
    assert 0 <= out.min() and out.max() <= 1 and out.std() > 0.1


# ---------------------------------------------------------------------- user weights
@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory: pytest.TempPathFactory):
    """A ResNet-18 at random initialisation saved with safetensors, like a converted torchvision
    checkpoint (with its classifier, which the extractor does not use)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in resnet18().state_dict().items()}
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    save_file(state, str(path))
    return path, state


def test_user_resnet_weights_load_offline_and_replay(digits, resnet_file) -> None:
    frame, _ = digits
    path, _ = resnet_file
    col = pa.array([*frame["image"].tolist()[:6], None])
    emb = ImageEmbedder(weights=path, size=32).fit(col, None, threads=1)
    out = emb.transform(col)
    assert emb.kind_ == "resnet18" and out.shape == (7, 512)
    assert np.isfinite(out[:6]).all() and np.isnan(out[6]).all()
    assert len(emb.weights_sha256_ or "") == 64
    loaded = ImageEmbedder.from_state(emb.to_json(), emb.arrays("image.p"), "image.p")
    assert np.array_equal(loaded.transform(col), out, equal_nan=True)


def test_wrong_shaped_weights_give_a_clear_error(digits, resnet_file, tmp_path) -> None:
    import torch
    from safetensors.torch import save_file

    frame, _ = digits
    col = pa.array(frame["image"].tolist()[:2])
    _, state = resnet_file
    bad = dict(state, **{"conv1.weight": torch.zeros(64, 1, 7, 7)})
    save_file(bad, str(tmp_path / "grey.safetensors"))
    with pytest.raises(
        ConfigError,
        match=r"tensor 'conv1.weight' has shape \(64, 1, 7, 7\), ResNet-18 needs "
        r"\(64, 3, 7, 7\)",
    ):
        ImageEmbedder(weights=tmp_path / "grey.safetensors").fit(col, None)
    save_file({"weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ConfigError, match=r"tensors are missing, e.g. 'conv1.weight'"):
        ImageEmbedder(weights=tmp_path / "other.safetensors").fit(col, None)
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigError, match="image_weights: expected a safetensors file"):
        ImageEmbedder(weights=tmp_path / "junk.safetensors").fit(col, None)
    with pytest.raises(ConfigError, match="an existing safetensors file"):
        ImageEmbedder(weights=tmp_path / "absent.safetensors").fit(col, None)


# ---------------------------------------------------------------------- in the preprocessor
def test_preprocessor_gives_image_features_and_saves_them(digits) -> None:
    frame, y = digits
    table = pa.table({"photo": frame["image"].tolist()[:200], "ink": frame["ink"].to_numpy()[:200]})
    specs = [ColumnSpec("photo", Role.IMAGE), ColumnSpec("ink", Role.NUMERIC)]
    typed = coerce(table, specs).table
    prep = Preprocessor(image_size=16, image_epochs=3).fit(typed, specs, y[:200], seed=0)
    m = prep.transform(typed, specs)
    names = [f.name for f in prep.num_features]
    assert names[:2] == ["photo.image0", "photo.image1"] and names[-1] == "ink" and m.num.shape == (200, 65)
    assert {f.source for f in prep.num_features[:64]} == {"photo"}
    again = Preprocessor.from_json(prep.to_json(), prep.arrays())
    assert np.array_equal(again.transform(typed, specs).num, m.num)


def test_the_fit_embeds_each_training_image_once(digits, monkeypatch) -> None:
    frame, _ = digits
    col = pa.array(frame["image"].tolist()[:10])
    emb = ImageEmbedder().fit(col, None)
    expected = emb.transform(col)
    embedded: list[int] = []
    original = ImageEmbedder._embed

    def counting(self, values):
        embedded.append(len(values))
        return original(self, values)

    monkeypatch.setattr(ImageEmbedder, "_embed", counting)
    emb.transform(col.slice(0, 6), remember=True)
    # the next call serves the six it has seen and embeds the four it has not, the one after all ten
    assert np.array_equal(emb.transform(col), expected) and embedded == [6, 4]
    assert np.array_equal(emb.transform(col), expected) and embedded == [6, 4, 10]


def test_profile_counts_unreadable_images(digits, tmp_path) -> None:
    from winnow.quality.profiling import profile

    frame, _ = digits
    table = frame.head(60).copy()
    table.loc[3, "image"] = str(tmp_path / "gone.png")
    prof = profile(table, target="label", positive=["yes"])
    image = next(c for c in prof.columns if c.name == "image")
    assert (image.role, image.invalid) == ("image", 1)
