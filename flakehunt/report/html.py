"""One self-contained HTML page (``--html``): charts as inline SVG, no script, no assets.

Every string from the suite goes through :func:`html.escape`; a
Content-Security-Policy forbids scripts and any fetch, so even a mistake in
escaping could not run code or phone home.
"""

from __future__ import annotations

from html import escape

from flakehunt.model import Finding, GateResult, HuntResult, Purpose, Verdict
from flakehunt.report import cluster_lines, rate, summary, verdict_counts

COLORS = {"flaky": "#d9480f", "failing": "#c92a2a", "stable": "#2b8a3e",
          "skipped": "#868e96", "not_run": "#ced4da"}
BAD, TRACK = "#d9480f", "#e9ecef"
DIMENSIONS = ("profile", "workers", "order")
#: no script, no fetch of anything: only the inline style and inline SVG
CSP = ('<meta http-equiv="Content-Security-Policy" '
       "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">")

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;
max-width:1100px;padding:0 16px;color:#212529}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 6px;word-break:break-all}
table{border-collapse:collapse;width:100%;margin:12px 0}
th,td{border-bottom:1px solid #dee2e6;padding:4px 8px;text-align:left;vertical-align:top}
td.id{word-break:break-all}
pre{background:#f1f3f5;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.muted{color:#868e96}.gate{padding:8px 12px;border-radius:4px;margin:12px 0}
.failed{background:#ffe3e3}.passed{background:#d3f9d8}
section{border-top:1px solid #dee2e6;margin-top:24px}
ul.evidence li{margin:2px 0}
"""


def e(text: object) -> str:
    return escape(str(text), quote=True)


def bar(x: int, y: int, width: float, height: int, color: str) -> str:
    return f'<rect x="{x}" y="{y}" width="{width:.1f}" height="{height}" fill="{color}"/>'


def overview_chart(result: HuntResult) -> str:
    """One stacked bar: how many tests got each verdict."""
    counts = verdict_counts(result.findings)
    total = sum(counts.values()) or 1
    width, x = 600, 0.0
    parts: list[str] = []
    legend: list[str] = []
    for verdict, color in COLORS.items():
        n = counts.get(verdict, 0)
        if not n:
            continue
        w = width * n / total
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="24" fill="{color}">'
                     f"<title>{n} {verdict}</title></rect>")
        x += w
        lx = 110 * len(legend)
        legend.append(f'{bar(lx, 34, 12, 12, color)}'
                      f'<text x="{lx + 16}" y="45">{n} {verdict}</text>')
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="52" '
            f'role="img" aria-label="tests by verdict">{"".join(parts)}{"".join(legend)}</svg>')


def rate_chart(f: Finding) -> str:
    """Failure rate per value of each dimension: a labelled bar per value."""
    rows, y = [], 0
    label_w, bar_w, row_h = 120, 300, 22
    for dim in (*DIMENSIONS, *(d for d in f.breakdown if d not in DIMENSIONS)):
        values = f.breakdown.get(dim)
        if not values:
            continue
        rows.append(f'<text x="0" y="{y + 15}" font-weight="bold">by {e(dim)}</text>')
        y += row_h
        for value, (bad, runs) in values.items():
            share = bad / runs if runs else 0.0
            rows.append(f'<text x="12" y="{y + 15}">{e(value)}</text>')
            rows.append(bar(label_w, y + 3, bar_w, 16, TRACK))
            rows.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w * share:.1f}" '
                        f'height="16" fill="{BAD}"><title>{e(dim)} {e(value)}: failed '
                        f'{bad}/{runs}</title></rect>')
            rows.append(f'<text x="{label_w + bar_w + 8}" y="{y + 15}">{bad}/{runs} '
                        f'({share:.0%})</text>')
            y += row_h
        y += 6
    if not rows:
        return ""
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 110}"'
            f' height="{y}" role="img" aria-label="failure rate by profile, workers and order">'
            f'{"".join(rows)}</svg>')


def gate_box(gate: GateResult | None) -> str:
    if gate is None:
        return ""
    status = "failed" if gate.failed else "passed"
    items = "".join(f"<li>{e(t)}: {e(why)}</li>" for t, why in gate.blocking.items())
    items += "".join(f"<li>quarantined: {e(q.test)} ({e(q.owner)}, until "
                     f"{e(q.expires.isoformat())}): {e(q.reason)}</li>"
                     for q in gate.quarantined)
    return (f'<div class="gate {status}"><b>gate (--fail-on {e(gate.fail_on)}): {status}'
            f'</b>{f"<ul>{items}</ul>" if items else ""}</div>')


def section(i: int, f: Finding) -> str:
    out = [f'<section id="t{i}"><h2>{e(f.nodeid)}</h2>',
           f'<p><b>{e(f.verdict.value)}</b>{", " + e(f.category) if f.category else ""}'
           f' &middot; failed {e(rate(f))} runs'
           + (f' &middot; problem: {e(f.problem)}' if f.problem else "") + "</p>",
           rate_chart(f)]
    facts = [f"<li><b>message:</b> {e(m)}</li>" for m in f.messages[:3]]
    if f.suspected_fixture:
        facts.append(f"<li><b>suspected fixture:</b> {e(f.suspected_fixture)}</li>")
    if f.polluter:
        facts.append(f"<li><b>polluter:</b> {e(', '.join(f.polluter))}</li>")
    facts += [f"<li>{e(x)}</li>" for x in f.evidence]
    if f.confidence:
        facts.append(f"<li><b>confidence:</b> {e(f.confidence)}</li>")
    if f.fix_hint:
        facts.append(f"<li><b>fix:</b> {e(f.fix_hint)}</li>")
    if facts:
        out.append(f'<ul class="evidence">{"".join(facts)}</ul>')
    if f.reproduce:
        out.append(f"<p><b>reproduce:</b></p><pre>{e(f.reproduce)}</pre>")
    return "".join(out) + "</section>"


def causes_list(result: HuntResult) -> str:
    lines = cluster_lines(result)
    if not lines:
        return ""
    items = "".join(f"<li>{e(x.split('. ', 1)[1])}</li>" for x in lines[1:])
    return f"<h2>{e(lines[0])}</h2><ol>{items}</ol>"


class HtmlReporter:
    def render(self, result: HuntResult) -> str:
        shown = [f for f in result.findings if f.verdict in (Verdict.FLAKY, Verdict.FAILING)]
        rest = [f for f in result.findings if f.verdict not in (Verdict.FLAKY, Verdict.FAILING)]
        s = result.settings
        facts = [f"rootdir {e(result.rootdir)}", f"seed {result.seed}"]
        if s.get("planned_runs") is not None:
            facts.append(f"{sum(r.spec.purpose is Purpose.SWEEP for r in result.runs)} of "
                         f"{s['planned_runs']} planned sweep runs")
        if s.get("shard"):
            facts.append(f"shard {e(s['shard'])}")
        if s.get("shards"):
            facts.append(f"merged from shards {e(', '.join(s['shards']))}")
        rows = "".join(
            f'<tr><td class="id"><a href="#t{i}">{e(f.nodeid)}</a></td>'
            f"<td>{e(f.verdict.value)}</td><td>{e(rate(f))}</td><td>{e(f.category or '-')}</td>"
            f"<td>{e(f.suspected_fixture or '-')}</td></tr>" for i, f in enumerate(shown))
        table = ("<table><tr><th>test</th><th>verdict</th><th>failed</th><th>category</th>"
                 f"<th>fixture</th></tr>{rows}</table>") if shown else ""
        others = "".join(f"<li>{e(f.nodeid)} <span class=muted>{e(f.verdict.value)}</span></li>"
                         for f in rest)
        warnings = "".join(f"<li>{e(w)}</li>" for w in result.warnings)
        return "".join([
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            CSP,
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>flakehunt: {e(summary(result))}</title><style>{STYLE}</style></head><body>",
            f"<h1>flakehunt</h1><p>{e(summary(result))}</p>",
            f'<p class="muted">{" &middot; ".join(facts)}</p>',
            gate_box(result.gate), causes_list(result), overview_chart(result), table,
            "".join(section(i, f) for i, f in enumerate(shown)),
            (f"<details><summary>{len(rest)} other tests</summary><ul>{others}</ul></details>"
             if rest else ""),
            f"<h2>warnings</h2><ul>{warnings}</ul>" if warnings else "",
            "</body></html>\n",
        ])
