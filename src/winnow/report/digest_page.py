"""The digest (:func:`winnow.report.digest.build_digest`) as one HTML page and as Markdown."""

from __future__ import annotations

from typing import Any

from winnow.report.svg import Guide, Series, line_chart, pct
from winnow.report.template import esc, facts, figure, kpi, page, section, table

RATE_COLOR = "#2456c9"


def _span(d: dict[str, float], fmt: str) -> str:
    return f"{fmt.format(d['value'])} ({fmt.format(d['low'])}-{fmt.format(d['high'])})"


def _expected_line(e: dict[str, Any] | None) -> str:
    if not e:
        return "not known (no held-out rows in the artifact)"
    out = f"precision {_span(e['precision'], '{:.0%}')}, {_span(e['lift_over_random'], '{:.1f}x')} random"
    if "lift_over_rule" in e:
        out += f", {_span(e['lift_over_rule'], '{:.1f}x')} the baseline rule"
    return out


def _reviews_line(r: dict[str, Any] | None) -> str:
    if not r:
        return "no review store given"
    if not r["reviewed"]:
        return "no verdicts yet"
    p = r["precision"]
    text = f"{r['reviewed']:,} reviewed"
    if p:
        text += f"; realised precision {_span(p, '{:.0%}')}"
    if r.get("recall_estimate") is not None:
        text += f"; recall estimate {r['recall_estimate']:.0%}"
    if r.get("lift_estimate") is not None:
        text += f"; lift over random {r['lift_estimate']:.1f}x"
    return text


def _volume_chart(d: dict[str, Any]) -> str:
    vol = [v for v in d["volume"] if v["start"] is not None]
    if len(vol) < 2:
        return ""
    xs = [float(i) for i in range(len(vol))]
    hi = max(max(v["rate"] for v in vol), d["expected_rate"]) * 1.25 or 1.0
    daily = vol[0]["start"][11:16] == vol[1]["start"][11:16]  # steps of whole days

    def when(x: float) -> str:
        if abs(x - round(x)) > 1e-9 or not 0 <= round(x) < len(vol):
            return ""
        start = vol[round(x)]["start"]
        return start[5:10] if daily else start[5:10] + " " + start[11:16]

    svg = line_chart(
        [Series("selection rate", xs, [v["rate"] for v in vol], RATE_COLOR, points=True)],
        label="selection rate per interval against the expected rate",
        x_label="interval start (UTC)",
        x_fmt=when,
        y_label="selected / scored",
        x_range=(0.0, max(xs)),
        y_range=(0.0, hi),
        y_fmt=pct,
        guides=[Guide("y", d["expected_rate"], "expected")],
        height=300,
    )
    return figure(svg, "Selection rate per interval; the dashed line is the rate the artifact expects.")


def _overview(d: dict[str, Any]) -> str:
    kpis = "".join(
        [
            kpi("scored", f"{d['scored']:,}"),
            kpi(
                "selected",
                f"{d['selected']:,}",
                f"{d['selection_rate']:.2%} (expected {d['expected_rate']:.2%})",
            ),
            kpi("themes", str(len(d["themes"])), f"{len(d['new']['themes'])} new"),
        ]
    )
    return section(
        "overview",
        "Overview",
        f'<div class="kpis">{kpis}</div>'
        + facts(
            [
                ("expected from the fit", esc(_expected_line(d["expected"]))),
                ("people's verdicts", esc(_reviews_line(d["reviews"]))),
            ]
        ),
    )


def _volume(d: dict[str, Any]) -> str:
    rows = [
        [esc(v["start"] or "all"), f"{v['scored']:,}", f"{v['selected']:,}", f"{v['rate']:.2%}"]
        for v in d["volume"]
    ]
    return section(
        "volume",
        "Volume and selection rate",
        _volume_chart(d)
        + table(["interval start", "scored", "selected", "rate"], rows, numeric=[False, True, True, True]),
    )


def _top(d: dict[str, Any]) -> str:
    top_rows = [
        [esc(t["id"] or ""), f"{t['score']:.3f}", esc(t["rule"] or ""), esc(" · ".join(t["reasons"]))]
        for t in d["top"]
    ]
    return section(
        "top",
        "Top records",
        table(["id", "score", "rule", "reasons"], top_rows, numeric=[False, True, False, False]),
        "The best-scored selected records, with the reasons the screener gives.",
    )


def _themes(d: dict[str, Any]) -> str:
    theme_rows = []
    for t in d["themes"]:
        words = "; ".join(f"{esc(c)}: {esc(', '.join(w))}" for c, w in t["words"].items())
        apart = esc("; ".join(t["set_apart_by"]))
        prev = "" if t["previous_share"] is None else f"{t['previous_share']:.0%}"
        theme_rows.append(
            [
                f"{t['theme']}" + (' <span class="pill">new</span>' if t["new"] else ""),
                f"{t['records']:,} ({t['share']:.0%})",
                prev,
                f"{t['mean_score']:.3f}",
                apart + ("<br>" if apart and words else "") + words,
                esc(", ".join(x for x in t["examples"] if x)),
            ]
        )
    return section(
        "themes",
        "Themes",
        table(
            ["theme", "selected", "before", "mean score", "what sets it apart", "examples"],
            theme_rows,
            numeric=[False, True, True, True, False, False],
        )
        if theme_rows
        else f"<p>{esc(d['themes_method'].get('note', ''))}</p>",
        "The selected records grouped in the screener's embedding; a theme is new when it holds "
        "at least three times the share of this period's selected records that it held before.",
    )


def _changes(d: dict[str, Any]) -> str:
    new = d["new"]
    drift = ", ".join(
        f"{x['feature']} (PSI {x['psi']:.2f}, {x['status']})" for x in new["drifted_inputs"] or []
    )
    return section(
        "new",
        "What is new",
        facts(
            [
                ("new themes", esc(", ".join(map(str, new["themes"])) or "none")),
                (
                    "score drift from the previous period",
                    esc("n/a" if new["score_psi"] is None else f"PSI {new['score_psi']:.3f}"),
                ),
                (
                    "selection rate before",
                    esc(
                        "n/a"
                        if new["selection_rate_before"] is None
                        else f"{new['selection_rate_before']:.2%}"
                    ),
                ),
                ("inputs drifted most from training", esc(drift or "n/a")),
            ]
        ),
    )


def digest_html(d: dict[str, Any]) -> str:
    """One self-contained page: no script, no network; the same digest gives the same bytes."""
    hero = (
        f"<h1>What was screened: {esc(d['period']['label'])}</h1>"
        f'<p class="lead">{esc(d["artifact"]["target"])} &middot; winnow {esc(d["artifact"]["version"])}</p>'
    )
    nav = [
        ("overview", "Overview"),
        ("volume", "Volume"),
        ("top", "Top records"),
        ("themes", "Themes"),
        ("new", "New"),
    ]
    footer = "Written by winnow digest from the screening output; no data leaves this file."
    body = _overview(d) + _volume(d) + _top(d) + _themes(d) + _changes(d)
    return page("winnow digest", hero, nav, body, footer)


def digest_markdown(d: dict[str, Any]) -> str:
    """The same digest as Markdown (for a chat message or a ticket)."""
    lines = [
        f"# What was screened: {d['period']['label']}",
        "",
        f"- scored {d['scored']:,}, selected {d['selected']:,} ({d['selection_rate']:.2%}; expected "
        f"{d['expected_rate']:.2%})",
        f"- expected from the fit: {_expected_line(d['expected'])}",
        f"- people's verdicts: {_reviews_line(d['reviews'])}",
        "",
        "## Top records",
        "",
        "| id | score | reasons |",
        "|---|---:|---|",
    ]
    lines += [f"| {t['id'] or ''} | {t['score']:.3f} | {' · '.join(t['reasons'])} |" for t in d["top"]]
    lines += ["", "## Themes", ""]
    for t in d["themes"]:
        words = "; ".join(f"{c}: {', '.join(w)}" for c, w in t["words"].items())
        what = "; ".join(x for x in ["; ".join(t["set_apart_by"]), words] if x)
        lines.append(
            f"- theme {t['theme']}{' (new)' if t['new'] else ''}: {t['records']:,} selected "
            f"({t['share']:.0%}), mean score {t['mean_score']:.3f}" + (f"; {what}" if what else "")
        )
    new = d["new"]
    lines += [
        "",
        "## What is new",
        "",
        f"- new themes: {', '.join(map(str, new['themes'])) or 'none'}",
        "- score drift from the previous period: "
        + ("n/a" if new["score_psi"] is None else f"PSI {new['score_psi']:.3f}"),
    ]
    return "\n".join(lines) + "\n"
