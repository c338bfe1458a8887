"""The report's page: inline CSS and small HTML builders (no templating engine, no assets)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

#: one colour per scorer, used by every chart and table of the report
COLORS = {"winnow": "#4338ca", "logistic regression": "#d97706", "rule": "#0f766e"}
POSITIVE = "#4338ca"
NEGATIVE = "#94a3b8"

CSS = """
:root {
  --ink: #0f172a; --body: #334155; --muted: #64748b; --line: #e2e8f0; --soft: #f8fafc;
  --accent: #4338ca; --accent-soft: #eef2ff; --warn: #b45309; --warn-soft: #fffbeb;
  --good: #047857;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--body); background: #f1f5f9;
  font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
h1, h2, h3 { color: var(--ink); line-height: 1.25; margin: 0 0 .5em; }
h1 { font-size: 2rem; letter-spacing: -.02em; }
h2 { font-size: 1.45rem; letter-spacing: -.01em; }
h3 { font-size: 1.05rem; margin-top: 1.4em; }
p { margin: 0 0 1em; max-width: 72ch; }
code { font: .88em/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: .05em .35em; }
.hero { background: linear-gradient(135deg, #1e1b4b 0%, #3730a3 55%, #4f46e5 100%); color: #e0e7ff;
  padding: 2.6rem 0 3.2rem; }
.hero h1 { color: #fff; }
.hero .kicker { text-transform: uppercase; letter-spacing: .12em; font-size: .78rem; color: #a5b4fc;
  font-weight: 600; margin-bottom: .4rem; }
.hero .headline { font-size: 1.2rem; color: #fff; max-width: 60ch; }
.hero .meta { color: #c7d2fe; font-size: .9rem; margin: 0; }
.hero code { background: rgba(255,255,255,.12); border-color: rgba(255,255,255,.2); color: #fff; }
.wrap { max-width: 1080px; margin: 0 auto; padding: 0 1.5rem; }
nav.toc { position: sticky; top: 0; z-index: 5; background: rgba(255,255,255,.94);
  border-bottom: 1px solid var(--line); backdrop-filter: blur(6px); }
nav.toc .wrap { display: flex; gap: 1.2rem; overflow-x: auto; white-space: nowrap; padding-top: .7rem;
  padding-bottom: .7rem; }
nav.toc a { color: var(--muted); text-decoration: none; font-size: .9rem; font-weight: 500; }
nav.toc a:hover { color: var(--accent); }
main { padding: 1.5rem 0 3rem; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 14px;
  padding: 1.7rem 1.8rem; margin: 0 0 1.5rem; box-shadow: 0 1px 2px rgba(15,23,42,.04); }
.lead { color: var(--muted); margin-top: -.2em; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 1rem;
  margin: 0 0 1.5rem; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 1rem 1.2rem;
  box-shadow: 0 4px 14px rgba(15,23,42,.06); }
.kpi .label { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: var(--muted);
  font-weight: 600; }
.kpi .value { font-size: 1.9rem; font-weight: 700; color: var(--ink); font-variant-numeric: tabular-nums;
  line-height: 1.2; margin: .15rem 0; }
.kpi .sub { font-size: .85rem; color: var(--muted); }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: .2rem 2.5rem;
  margin: 0 0 1rem; }
.facts div { display: flex; justify-content: space-between; gap: 1rem; border-bottom: 1px dashed var(--line);
  padding: .35rem 0; }
.facts dt { color: var(--muted); }
.facts dt { flex: none; }
.facts dd { margin: 0; color: var(--ink); font-weight: 600; text-align: right; min-width: 0;
  overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .93rem; }
th, td { padding: .5rem .7rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .82rem; background: var(--soft); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.highlight td { background: var(--accent-soft); }
td.best { color: var(--good); font-weight: 700; }
.scroll { overflow-x: auto; }
.swatch { display: inline-block; width: .7em; height: .7em; border-radius: 2px; margin-right: .4em;
  vertical-align: baseline; }
.role { display: inline-block; padding: .05em .55em; border-radius: 999px; font-size: .8rem;
  font-weight: 600; background: var(--soft); border: 1px solid var(--line); }
.role-ignore, .role-id { color: var(--muted); }
.chip { display: inline-block; margin: .1em .3em .1em 0; padding: .1em .55em; border-radius: 6px;
  background: var(--accent-soft); color: #3730a3; font-size: .83rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 1.5rem; }
figure { margin: 0; }
figure svg.chart { width: 100%; height: auto; display: block; }
figure.bars svg.chart { max-width: 900px; }
figcaption { font-size: .9rem; color: var(--body); margin-top: .4rem; }
figcaption strong { color: var(--ink); }
.note { background: var(--soft); border-left: 3px solid var(--accent); padding: .7rem 1rem;
  border-radius: 0 8px 8px 0; font-size: .92rem; margin: .6rem 0 1rem; }
.warn { background: var(--warn-soft); border-left: 3px solid var(--warn); padding: .6rem 1rem;
  border-radius: 0 8px 8px 0; margin: .4rem 0; color: #78350f; }
.muted { color: var(--muted); }
footer { color: var(--muted); font-size: .85rem; padding: 0 0 3rem; }
@media print { nav.toc { display: none; } body { background: #fff; } section.card { break-inside: avoid; } }
"""


_NUM = ' class="num"'


def esc(v: object) -> str:
    return escape(str(v), quote=True)


def section(sid: str, title: str, body: str, lead: str = "") -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section class="card" id="{esc(sid)}"><h2>{esc(title)}</h2>{lead_html}{body}</section>'


def facts(items: Iterable[tuple[str, str]]) -> str:
    """A definition list laid out as a grid of label/value pairs (values are HTML)."""
    rows = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in items)
    return f'<dl class="facts">{rows}</dl>'


def kpi(label: str, value: str, sub: str = "") -> str:
    return (
        f'<div class="kpi"><div class="label">{esc(label)}</div><div class="value">{esc(value)}</div>'
        f'<div class="sub">{sub}</div></div>'
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[bool] | None = None,
    row_classes: Sequence[str] | None = None,
    table_id: str = "",
) -> str:
    """A table whose cells are given as HTML; ``numeric`` right-aligns columns.

    A cell that is already a ``<td ...>`` element is used as it is (to carry classes or data).
    """
    numeric = numeric or [False] * len(headers)
    head = "".join(f"<th{_NUM if n else ''}>{esc(h)}</th>" for h, n in zip(headers, numeric, strict=True))
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for c, n in zip(row, numeric, strict=True):
            cells.append(c if c.startswith("<td") else f"<td{_NUM if n else ''}>{c}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return (
        f'<div class="scroll"><table{tid}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure(svg: str, caption: str, fid: str = "", cls: str = "") -> str:
    attrs = (f' id="{esc(fid)}"' if fid else "") + (f' class="{esc(cls)}"' if cls else "")
    return f"<figure{attrs}>{svg}<figcaption>{caption}</figcaption></figure>"


def page(title: str, hero: str, nav: Sequence[tuple[str, str]], body: str, footer: str) -> str:
    links = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in nav)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="hero"><div class="wrap">{hero}</div></header>'
        f'<nav class="toc" aria-label="sections"><div class="wrap">{links}</div></nav>'
        f'<main><div class="wrap">{body}</div></main>'
        f'<footer><div class="wrap">{footer}</div></footer>'
        "</body></html>\n"
    )
