"""Bad files through ``winnow screen``: exit 3 with one clear message, or rows screened and the
unreadable ones rejected with a reason; never a Python traceback (checked at the file-descriptor
level, where pyarrow's own "Exception ignored" reports would land)."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.helpers import make_frame
from winnow.cli import app

SEED = 20261207


def _frame() -> pd.DataFrame:
    return make_frame(60, seed=3).drop(columns=["churn", "future_spend"], errors="ignore")


def _csv_text() -> str:
    return _frame().to_csv(index=False)


def random_bytes(d: Path, suffix: str) -> Path:
    p = d / f"random{suffix}"
    p.write_bytes(random.Random(SEED).randbytes(50_000))
    return p


def truncated_parquet(d: Path) -> Path:
    p = d / "t.parquet"
    pq.write_table(pa.Table.from_pandas(_frame()), p)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def truncated_csv(d: Path) -> Path:
    p = d / "t.csv"
    text = _csv_text()
    p.write_text(text[: int(len(text) * 0.7)])
    return p


def truncated_gzip(d: Path) -> Path:
    p = d / "t.csv.gz"
    data = gzip.compress(_csv_text().encode())
    p.write_bytes(data[: len(data) // 2])
    return p


def latin1(d: Path) -> Path:
    p = d / "latin1.csv"
    text = _csv_text()
    lines = text.splitlines()
    lines[5] = lines[5].replace(",", ",caf\u00e9 ", 1)
    p.write_bytes("\n".join(lines).encode("latin-1"))
    return p


def utf16(d: Path) -> Path:
    p = d / "utf16.csv"
    p.write_bytes(_csv_text().encode("utf-16"))
    return p


def utf8_bom(d: Path) -> Path:
    p = d / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + _csv_text().encode())
    return p


def mixed_line_endings(d: Path) -> Path:
    p = d / "mixed.csv"
    lines = _csv_text().splitlines()
    ends = ["\n", "\r\n", "\r"]
    p.write_bytes("".join(ln + ends[i % 3] for i, ln in enumerate(lines)).encode())
    return p


def huge_field(d: Path) -> Path:
    p = d / "huge.csv"
    lines = _csv_text().splitlines()
    head = lines[1].split(",")
    head[-1] = "x" * 10_000_000
    lines[1] = ",".join(head)
    p.write_text("\n".join(lines) + "\n")
    return p


def many_columns(d: Path) -> Path:
    p = d / "wide.csv"
    f = _frame()
    extra = pd.DataFrame({f"c{i}": [i] * len(f) for i in range(10_000)})
    pd.concat([f, extra], axis=1).to_csv(p, index=False)
    return p


def duplicate_columns(d: Path) -> Path:
    p = d / "dup.csv"
    lines = _csv_text().splitlines()
    first = lines[0].split(",")[0]
    p.write_text("\n".join([lines[0] + "," + first] + [ln + ",1" for ln in lines[1:]]) + "\n")
    return p


def bad_jsonl(d: Path) -> Path:
    p = d / "bad.jsonl"
    rows = [json.dumps(r, default=str) for r in _frame().to_dict("records")]
    rows[3] = rows[3][:20]
    rows[7] = "\x00\x01garbage"
    p.write_text("\n".join(rows) + "\n")
    return p


CASES: dict[str, Callable[[Path], Path]] = {
    "random.csv": lambda d: random_bytes(d, ".csv"),
    "random.parquet": lambda d: random_bytes(d, ".parquet"),
    "random.jsonl": lambda d: random_bytes(d, ".jsonl"),
    "random.csv.gz": lambda d: random_bytes(d, ".csv.gz"),
    "truncated.parquet": truncated_parquet,
    "truncated.csv": truncated_csv,
    "truncated.csv.gz": truncated_gzip,
    "latin1.csv": latin1,
    "utf16.csv": utf16,
    "utf8_bom.csv": utf8_bom,
    "mixed_line_endings.csv": mixed_line_endings,
    "10mb_field.csv": huge_field,
    "10000_columns.csv": many_columns,
    "duplicate_columns.csv": duplicate_columns,
    "bad_lines.jsonl": bad_jsonl,
}


#: files whose rows can be read: they must screen (bad rows rejected with a reason)
READABLE = {"truncated.csv", "utf8_bom.csv", "mixed_line_endings.csv", "10mb_field.csv", "10000_columns.csv",
            "bad_lines.jsonl"}  # fmt: skip
#: how many rejects each must write, at least
REJECTED = {"bad_lines.jsonl": 2}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_is_a_clear_error_or_rejects(
    case: str, artifact_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = CASES[case](tmp_path)
    out = tmp_path / "out.csv"
    rejects = tmp_path / "rejects.jsonl"
    r = CliRunner().invoke(
        app, ["screen", str(artifact_dir), str(data), "--out", str(out), "--rejects", str(rejects)]
    )
    fd = capfd.readouterr()
    text = r.output + fd.out + fd.err
    assert "Traceback" not in text and "Exception ignored" not in text, text[-3000:]
    assert isinstance(r.exception, SystemExit) or r.exception is None, repr(r.exception)
    assert r.exit_code == (0 if case in READABLE else 3), (r.exit_code, text[-2000:])
    if r.exit_code == 3:
        message = [ln for ln in text.splitlines() if ln.startswith("error:")]
        assert len(message) == 1 and len(message[0]) < 600, text[-2000:]
    else:
        assert out.exists()
        lines = rejects.read_text().splitlines() if rejects.exists() else []
        assert len(lines) >= REJECTED.get(case, 0), lines
        for line in lines:
            assert json.loads(line)["reason"], line
    print(case, r.exit_code, (text.strip().splitlines() or [""])[-1][:200])
