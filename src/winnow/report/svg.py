"""Small hand-written SVG charts: line charts and horizontal bar charts, inline in the report.

No plotting library: the report must open with no network and stay small, and the charts it
needs are few and simple. Coordinates are written with fixed precision so the same data gives
byte-identical SVG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

Format = Callable[[float], str]

AXIS = "#94a3b8"
GRID = "#e2e8f0"
INK = "#334155"
MUTED = "#64748b"


def _n(v: float) -> str:
    """A coordinate: one decimal, no trailing zeros ("12", "12.5")."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _attr(v: object) -> str:
    return escape(str(v), quote=True)


def _text_width(s: str, size: float = 12.0) -> float:
    # an estimate good enough to lay out legends without measuring fonts
    return len(s) * size * 0.53


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``n`` of them."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def nice_upper(v: float) -> float:
    """The smallest "round" number >= v (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10 times a power of 10)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    return next(m * mag for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= v * (1 - 1e-9))


def pct(v: float) -> str:
    """A share as a percentage with at most two decimals: 0.1 -> "10%", 0.0125 -> "1.25%"."""
    return f"{v * 100:.2f}".rstrip("0").rstrip(".") + "%"


def plain(v: float) -> str:
    return f"{v:g}"


@dataclass
class Series:
    """One line of a chart. ``dash`` is an SVG dash array; ``fill`` shades the area under it."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: str
    width: float = 2.25
    dash: str | None = None
    points: bool = False
    fill: bool = False
    legend: bool = True


@dataclass
class Guide:
    """A vertical (``axis="x"``) or horizontal (``axis="y"``) reference line with a label."""

    axis: str
    value: float
    label: str = ""
    color: str = MUTED
    dash: str = "4 4"


@dataclass
class Dot:
    """A highlighted point with a label (e.g. the budget on a curve)."""

    x: float
    y: float
    label: str
    color: str


@dataclass
class Frame:
    """Plot area geometry and the data-to-pixel mapping."""

    width: int = 600
    height: int = 380
    left: int = 62
    right: int = 20
    top: int = 44
    bottom: int = 52
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    parts: list[str] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.height - self.bottom

    @property
    def y1(self) -> float:
        return self.top

    def px(self, x: float) -> float:
        lo, hi = self.x_range
        x = min(max(x, lo), hi)
        return self.x0 + (x - lo) / (hi - lo) * (self.x1 - self.x0)

    def py(self, y: float) -> float:
        lo, hi = self.y_range
        y = min(max(y, lo), hi)
        return self.y0 - (y - lo) / (hi - lo) * (self.y0 - self.y1)


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_attr(label)}" font-size="12">'
        f"<title>{escape(label)}</title>"
    )


def _axes(f: Frame, x_label: str, y_label: str, x_fmt: Format, y_fmt: Format) -> None:
    p = f.parts
    for t in nice_ticks(*f.y_range):
        y = _n(f.py(t))
        p.append(f'<line x1="{_n(f.x0)}" y1="{y}" x2="{_n(f.x1)}" y2="{y}" stroke="{GRID}"/>')
        p.append(
            f'<text x="{_n(f.x0 - 8)}" y="{y}" dy="0.32em" text-anchor="end" fill="{MUTED}">'
            f"{escape(y_fmt(t))}</text>"
        )
    for t in nice_ticks(*f.x_range):
        x = _n(f.px(t))
        p.append(f'<line x1="{x}" y1="{_n(f.y0)}" x2="{x}" y2="{_n(f.y0 + 5)}" stroke="{AXIS}"/>')
        p.append(
            f'<text x="{x}" y="{_n(f.y0 + 18)}" text-anchor="middle" fill="{MUTED}">{escape(x_fmt(t))}</text>'
        )
    p.append(f'<line x1="{_n(f.x0)}" y1="{_n(f.y0)}" x2="{_n(f.x1)}" y2="{_n(f.y0)}" stroke="{AXIS}"/>')
    p.append(f'<line x1="{_n(f.x0)}" y1="{_n(f.y0)}" x2="{_n(f.x0)}" y2="{_n(f.y1)}" stroke="{AXIS}"/>')
    p.append(
        f'<text x="{_n((f.x0 + f.x1) / 2)}" y="{f.height - 10}" text-anchor="middle" fill="{INK}" '
        f'font-weight="600">{escape(x_label)}</text>'
    )
    cy = _n((f.y0 + f.y1) / 2)
    p.append(
        f'<text transform="translate(16 {cy}) rotate(-90)" text-anchor="middle" fill="{INK}" '
        f'font-weight="600">{escape(y_label)}</text>'
    )


def _legend(f: Frame, items: list[tuple[str, str, str | None]]) -> None:
    """Swatches in one row above the plot area (wrapping to a second row if needed)."""
    x, y = float(f.x0), 18.0
    for name, color, dash in items:
        w = 26 + _text_width(name) + 14
        if x + w > f.x1 and x > f.x0:
            x, y = float(f.x0), y + 18
        d = f' stroke-dasharray="{dash}"' if dash else ""
        f.parts.append(
            f'<line x1="{_n(x)}" y1="{_n(y)}" x2="{_n(x + 20)}" y2="{_n(y)}" stroke="{color}" '
            f'stroke-width="3"{d}/>'
        )
        f.parts.append(f'<text x="{_n(x + 26)}" y="{_n(y)}" dy="0.32em" fill="{INK}">{escape(name)}</text>')
        x += w


def line_chart(
    series: Sequence[Series],
    *,
    label: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] = (0.0, 1.0),
    y_range: tuple[float, float] = (0.0, 1.0),
    x_fmt: Format = plain,
    y_fmt: Format = plain,
    guides: Sequence[Guide] = (),
    dots: Sequence[Dot] = (),
    width: int = 600,
    height: int = 380,
) -> str:
    """An SVG line chart; values outside the ranges are clipped to the plot area."""
    f = Frame(width=width, height=height, x_range=x_range, y_range=y_range)
    _axes(f, x_label, y_label, x_fmt, y_fmt)
    p = f.parts
    for s in series:
        pts = [
            (f.px(x), f.py(y)) for x, y in zip(s.x, s.y, strict=True) if math.isfinite(x) and math.isfinite(y)
        ]
        if not pts:
            continue
        path = "M" + " L".join(f"{_n(a)} {_n(b)}" for a, b in pts)
        if s.fill:
            area = f"{path} L{_n(pts[-1][0])} {_n(f.y0)} L{_n(pts[0][0])} {_n(f.y0)} Z"
            p.append(f'<path d="{area}" fill="{s.color}" fill-opacity="0.16" stroke="none"/>')
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        p.append(
            f'<path d="{path}" fill="none" stroke="{s.color}" stroke-width="{s.width}" '
            f'stroke-linejoin="round" stroke-linecap="round"{dash}><title>{escape(s.name)}</title></path>'
        )
        if s.points:
            for a, b in pts:
                p.append(
                    f'<circle cx="{_n(a)}" cy="{_n(b)}" r="3.5" fill="#fff" '
                    f'stroke="{s.color}" stroke-width="2"/>'
                )
    for g in guides:
        if g.axis == "x":
            x = _n(f.px(g.value))
            p.append(
                f'<line x1="{x}" y1="{_n(f.y0)}" x2="{x}" y2="{_n(f.y1)}" stroke="{g.color}" '
                f'stroke-width="1.5" stroke-dasharray="{g.dash}"/>'
            )
            if g.label:
                anchor = "end" if f.px(g.value) > (f.x0 + f.x1) / 2 else "start"
                dx = -5 if anchor == "end" else 5
                p.append(
                    f'<text x="{x}" dx="{dx}" y="{_n(f.y1 + 12)}" text-anchor="{anchor}" fill="{g.color}" '
                    f'font-weight="600">{escape(g.label)}</text>'
                )
        else:
            y = _n(f.py(g.value))
            p.append(
                f'<line x1="{_n(f.x0)}" y1="{y}" x2="{_n(f.x1)}" y2="{y}" stroke="{g.color}" '
                f'stroke-width="1.5" stroke-dasharray="{g.dash}"/>'
            )
            if g.label:
                p.append(
                    f'<text x="{_n(f.x1 - 4)}" y="{y}" dy="-0.45em" text-anchor="end" fill="{g.color}">'
                    f"{escape(g.label)}</text>"
                )
    for d in dots:
        cx, cy = f.px(d.x), f.py(d.y)
        p.append(
            f'<circle cx="{_n(cx)}" cy="{_n(cy)}" r="5.5" fill="{d.color}" stroke="#fff" stroke-width="2"/>'
        )
        anchor = "end" if cx > (f.x0 + f.x1) * 0.6 else "start"
        dx = -9 if anchor == "end" else 9
        p.append(
            f'<text x="{_n(cx)}" y="{_n(cy)}" dx="{dx}" dy="-0.6em" text-anchor="{anchor}" fill="{INK}" '
            f'font-weight="600" paint-order="stroke" stroke="#fff" stroke-width="3">{escape(d.label)}</text>'
        )
    _legend(f, [(s.name, s.color, s.dash) for s in series if s.legend])
    return _open(width, height, label) + "".join(p) + "</svg>"


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    label: str,
    color: str,
    fmt: Format = pct,
    width: int = 900,
    bar: int = 22,
    gap: int = 8,
) -> str:
    """Horizontal bars, largest first as given, each labelled with its value."""
    label_w = min(220, max((_text_width(s) for s in labels), default=40) + 16)
    top, right = 8, 64
    height = top + len(labels) * (bar + gap) + 8
    hi = max((v for v in values if math.isfinite(v)), default=1.0) or 1.0
    span = width - label_w - right
    p = []
    for i, (name, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar + gap)
        w = max(0.0, v) / hi * span
        p.append(
            f'<text x="{_n(label_w - 10)}" y="{_n(y + bar / 2)}" dy="0.32em" text-anchor="end" '
            f'fill="{INK}">{escape(name)}</text>'
        )
        p.append(
            f'<rect x="{_n(label_w)}" y="{y}" width="{_n(w)}" height="{bar}" rx="4" fill="{color}">'
            f"<title>{escape(name)}: {escape(fmt(v))}</title></rect>"
        )
        p.append(
            f'<text x="{_n(label_w + w + 6)}" y="{_n(y + bar / 2)}" dy="0.32em" fill="{MUTED}">'
            f"{escape(fmt(v))}</text>"
        )
    return _open(width, height, label) + "".join(p) + "</svg>"
