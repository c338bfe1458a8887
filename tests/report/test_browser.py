"""The report in a real headless browser: it renders, with its charts, and is not a blank page.

Needs a Chromium binary (Debian: ``apt-get install chromium``); skipped, saying so, without one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.report import png
from winnow.report.build import SECTIONS

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 4000


def _run(exe: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        exe,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def test_screenshot_is_a_rendered_page(chromium: str, report_with_data: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    res = _run(
        chromium,
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        report_with_data.as_uri(),
        tmp=tmp_path,
    )
    assert shot.is_file(), res.stderr[-2000:]
    img = png.decode(shot.read_bytes())[..., :3]
    assert img.shape[:2] == (HEIGHT, WIDTH)
    packed = (img[..., 0].astype(np.uint32) << 16) | (img[..., 1].astype(np.uint32) << 8) | img[..., 2]
    colours = np.unique(packed)
    assert len(colours) > 200, f"only {len(colours)} distinct colours: a blank or unstyled page?"
    not_white = np.any(img < 245, axis=2).mean()
    assert not_white > 0.2, f"only {not_white:.1%} of the page is not white"
    # the hero's dark indigo band is at the top: the inline CSS was applied
    assert img[40, WIDTH // 2].sum() < 300
    # the scorer colours of the charts were painted (winnow indigo, logistic regression amber)
    for rgb in (0x4338CA, 0xD97706):
        assert np.count_nonzero(packed == rgb) > 50, f"colour #{rgb:06x} not found"


def test_dom_has_every_section_and_no_console_errors(
    chromium: str, report_with_data: Path, tmp_path: Path
) -> None:
    res = _run(
        chromium, "--dump-dom", "--enable-logging=stderr", "--v=0", report_with_data.as_uri(), tmp=tmp_path
    )
    dom = res.stdout
    assert dom.strip(), res.stderr[-2000:]
    for sid, title in SECTIONS:
        assert f'id="{sid}"' in dom
        assert title in dom
    assert dom.count("<svg") == 6
    assert 'id="top-table"' in dom
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line]
    assert not console, "\n".join(console)
