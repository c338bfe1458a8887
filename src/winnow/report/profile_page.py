"""The data profile (``winnow profile --html``) as one self-contained HTML page, in the report's style."""

from __future__ import annotations

from typing import Any

from winnow.report.template import esc, facts, kpi, page, section, table


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return esc(v)


def _bar(share: float) -> str:
    """A small inline bar for a share in [0, 1] (no script, no image)."""
    w = max(0.0, min(1.0, share)) * 60
    return (
        f'<span style="white-space:nowrap"><svg width="62" height="10" role="img" aria-label="{share:.0%}">'
        f'<rect x="0" y="1" width="60" height="8" fill="#e2e8f0"/>'
        f'<rect x="0" y="1" width="{w:.1f}" height="8" fill="#b45309"/></svg> {share:.1%}</span>'
    )


def _summary(c: dict[str, Any]) -> str:
    s = c.get("summary") or {}
    if "median" in s:
        keys = [k for k in ("min", "p25", "median", "p75", "max") if k in s]
        return ", ".join(f"{k} {_num(s[k])}" for k in keys)
    if "top" in s:
        return ", ".join(f"{esc(v)} ({n:,})" for v, n in s["top"])
    if "length_median" in s:
        return (
            f"length: median {s['length_median']:.0f}, p99 {s['length_p99']:.0f}, max {s['length_max']:.0f}"
        )
    if s.get("true_share") is not None:
        return f"true {s['true_share']:.1%}"
    return ""


def profile_html(p: dict[str, Any]) -> str:
    """The page for a profile's JSON (:meth:`winnow.quality.profiling.Profile.to_json`)."""
    nd = p["near_duplicates"]
    cards = [
        kpi("rows", f"{p['rows']:,}", f"{len(p['columns'])} columns"),
        kpi("exact duplicates", f"{p['exact_duplicates']:,}", "rows equal in every column"),
        kpi("near-duplicates", f"{nd['rows']:,}", f"rows in {nd['clusters']:,} clusters"),
    ]
    if p.get("target"):
        t = p["target"]
        cards.append(kpi("high-value", f"{t['rate']:.2%}", esc(t["rule"])))
    body = section(
        "overview",
        "Overview",
        f'<div class="kpis">{"".join(cards)}</div>'
        + facts(
            [
                ("source", esc(p["source"])),
                ("sample", f"{p['sample_rows']:,} of {p['rows']:,} rows"),
                ("unreadable records", f"{p.get('unreadable', 0):,}"),
            ]
        ),
    )
    warnings = p.get("warnings") or []
    body += section(
        "warnings",
        f"Warnings ({len(warnings)})",
        "".join(f'<div class="warn">{esc(w)}</div>' for w in warnings) or '<p class="muted">None.</p>',
    )
    rows = []
    for c in p["columns"]:
        distinct = f"{c['distinct']:,}" + ("" if c["distinct_exact"] else "+")
        out = "" if c.get("outlier_rate") is None else f"{c['outlier_rate']:.1%}"
        rows.append(
            [
                f"<code>{esc(c['name'])}</code>",
                esc(c["role"]),
                _bar(c["missing_rate"]),
                _num(c.get("invalid", 0)),
                distinct,
                out,
                _summary(c),
            ]
        )
    body += section(
        "columns",
        "Columns",
        table(
            ["column", "role", "missing", "invalid", "distinct", "outliers", "distribution"],
            rows,
            numeric=[False, False, False, True, True, True, False],
        ),
        lead="Roles as <code>winnow fit</code> would infer them; outliers are beyond 3 IQR past the "
        "quartiles.",
    )
    if p.get("leakage"):
        body += section(
            "leakage",
            "Leakage check",
            table(
                ["column", "single-column ROC-AUC", "suspect"],
                [
                    [f"<code>{esc(d['column'])}</code>", f"{d['auc']:.3f}", "yes" if d["suspect"] else ""]
                    for d in p["leakage"][:20]
                ],
                numeric=[False, True, False],
            ),
            lead="How well each column alone separates the classes on held-out rows; 0.98 or more is "
            "suspect.",
        )
    if p.get("drift"):
        d = p["drift"]
        body += section(
            "drift",
            "Drift",
            table(
                ["column", "PSI", "status"],
                [
                    [f"<code>{esc(x['column'])}</code>", f"{x['psi']:.3f}", esc(x["status"])]
                    for x in d["columns"]
                ],
                numeric=[False, True, False],
            ),
            lead=f"Population stability index, {esc(d['by'])} ({d['rows'][0]:,} and {d['rows'][1]:,} rows).",
        )
    if nd.get("examples"):
        body += section(
            "near-duplicates",
            "Near-duplicate clusters",
            "".join(f"<p>rows {', '.join(str(r) for r in ex)}</p>" for ex in nd["examples"]),
            lead="The largest clusters (input row numbers); compared columns: "
            + ", ".join(f"<code>{esc(c)}</code>" for c in nd.get("columns", [])),
        )
    hero = (
        '<div class="kicker">winnow data profile</div>'
        f"<h1>{esc(p['source'])}</h1>"
        f'<p class="headline">{p["rows"]:,} rows, {len(p["columns"])} columns, {len(warnings)} warnings</p>'
    )
    nav = [("overview", "Overview"), ("warnings", "Warnings"), ("columns", "Columns")]
    nav += [(s, s.replace("-", " ").capitalize()) for s in ("leakage", "drift") if p.get(s)]
    return page(f"Profile of {p['source']}", hero, nav, body, "Written by <code>winnow profile</code>.")
