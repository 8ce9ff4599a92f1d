"""The self-contained HTML page: plots embedded as PNG data URIs."""

from __future__ import annotations

import base64
import html

from synthmix.report.model import Finding, Plot, Report, Table

# --- HTML --------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.headline { border: 2px solid #444; border-radius: 6px; padding: 0.6em 1.2em;
            background: #f7f7f2; }
.headline li { margin: 0.3em 0; }
.helped { color: #11632b; font-weight: 600; }
.no_effect { color: #6b5a00; }
.hurt { color: #9b1c1c; font-weight: 600; }
.wide { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; white-space: nowrap; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: 0.9em; }
img { max-width: 100%; } .note { color: #555; font-size: 0.9em; }
pre { background: #f4f4f4; padding: 0.8em; overflow-x: auto; }
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def html_table(table: Table) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(v)}</td>' if i in table.numeric else f"<td>{esc(v)}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>\n"
        for row in table.rows
    )
    # The scroll container keeps a wide table from widening the page past a 1300 px window.
    return (
        f'<div class="wide"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n'
        "</table></div>"
    )


def _html_finding(finding: Finding) -> str:
    if finding.verdict is None:
        return f"<li>{esc(finding.text)}</li>"
    return f'<li class="{finding.verdict.name.lower()}">{esc(finding.text)}</li>'


def html_plot(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img alt="{esc(plot.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{esc(plot.title)}.</b> {esc(plot.caption)}</figcaption></figure>"
    )


def render_html(report: Report) -> str:
    findings = "\n".join(_html_finding(f) for f in report.findings)
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in report.notes)
    plots = "\n".join(html_plot(p) for p in report.plots)
    run = "\n".join(f"<h3>{esc(title)}</h3>\n{html_table(t)}" for title, t in report.run_tables)
    title = esc(f"synthmix report: {report.name}")
    sections = "\n".join(f"<h2>{esc(s.title)}</h2>\n{s.html}" for s in report.sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head>
<body>
<h1>{title}</h1>
<section class="headline"><h2>Did synthetic data help?</h2>
<ul>
{findings}
</ul>
{notes}
</section>
<h2>Plots</h2>
{plots}
<h2>Ranking</h2>
<p class="note">All cells by mean F1-macro. Gap is the mean F1-macro minus that of all real
data; "vs baseline" is the paired difference to the mix's baseline with its 95% CI, and the
verdict needs its Holm-corrected p below 0.05 (see the note under the headline).</p>
{html_table(report.ranking)}
{sections}
<h2>Run</h2>
{run}
<details><summary>Full configuration</summary><pre>{esc(report.config_json)}</pre></details>
</body>
</html>
"""
