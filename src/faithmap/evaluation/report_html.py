"""The evaluation report: tables, figures and one self-describing HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..core.files import atomic_write_bytes
from ..viz.figures import curves_figure, heatmap_grid
from .results import EvaluationResult
from .table import Cell, Section, flag_summary, split_columns

_STYLE = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.3em 0 1em;font-size:14px}
h3.part{font-size:14px;margin:1em 0 0;color:#444}
.parts{display:flex;flex-wrap:wrap;column-gap:2em;align-items:flex-start}
.part{max-width:100%}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3} td.method{text-align:left;font-weight:600}
td.best{background:#e6f4ea;font-weight:700} .ci{color:#777;font-size:12px}
.caption{font-size:13px;color:#444} .flags{font-size:13px;color:#a05a00}
.cat{font-size:11px;color:#666;font-weight:normal} img{max-width:100%;margin:0.5em 0}
.errors{color:#a00} .scroll{overflow-x:auto} code{background:#f5f5f5;padding:1px 4px}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
"""
_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
  document.body.setAttribute('data-table-rows',
    document.querySelectorAll('table.metrics[data-part="0"] tbody tr').length);
  document.body.setAttribute('data-scroll-width', document.documentElement.scrollWidth);
});
"""


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return "<td>—</td>"
    ci = f' <span class="ci">±{cell.ci95:.3f}</span>' if cell.has_ci else ""
    star = " ★" if cell.best else ""
    return f'<td class="{"best" if cell.best else ""}">{cell.mean:.3f}{ci}{star}</td>'


def _name(metric: str) -> str:
    """A metric's name that may break after its underscores (narrow columns)."""
    return html.escape(metric).replace("_", "_<wbr>")


def _table(section: Section, part: int = 0) -> str:
    head = "".join(
        f'<th>{_name(c.metric)} {c.arrow}'
        f'<br><span class="cat">{html.escape(c.category)}</span></th>'
        for c in section.columns)
    body = "".join(
        f'<tr><td class="method">{html.escape(method)}</td>'
        + "".join(_cell(c) for c in cells) + "</tr>"
        for method, cells in section.rows)
    return (f'<table class="metrics" data-part="{part}"><thead><tr><th>method</th>{head}'
            "</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def figure_notes(result: EvaluationResult, dataset: str) -> dict[str, dict[int, str]]:
    """Per method and heatmap row: "fell back" where the method used its fallback for that
    sample (its ``metadata["fallback_samples"]``), for the target the figure shows."""
    shown = result.config.get("datasets", {}).get(dataset, {}).get("figure_target")
    notes: dict[str, dict[int, str]] = {}
    for method, flags in result.flags.get(dataset, {}).items():
        for policy, samples in flags.get("fallback", {}).items():
            if shown is None or policy == shown:
                for s in samples:
                    notes.setdefault(method, {})[s] = "fell back"
    return notes


def write_report(result: EvaluationResult, out: Path) -> Path:
    """Write tables, PNG figures and ``report.html`` into ``out``; return the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    tables = {t.dataset: t for t in result.sections()}
    for dataset in result.config.get("datasets", {}):
        figures = []
        if result.curves.get(dataset):
            path = curves_figure(result.curves[dataset], out / f"curves_{dataset}.png",
                                 f"{dataset}: deletion / insertion (mean of first samples)")
            figures.append(path.name)
        if result.maps.get(dataset):
            labels = result.shown_labels.get(dataset) or [
                f"target {t}" for t in result.shown_targets.get(dataset, [])]
            path = heatmap_grid(result.images[dataset], result.maps[dataset],
                                out / f"heatmaps_{dataset}.png",
                                f"{dataset}: attributions for the class named left", labels,
                                figure_notes(result, dataset))
            figures.append(path.name)
        result.figures.update({f"{dataset}:{f.split('_')[0]}": f for f in figures})
        info = result.config["datasets"][dataset]
        section = tables.get(dataset, Section(dataset, [], []))
        table = '<div class="parts">' + "".join(
            '<div class="part">'
            + (f'<h3 class="part">{html.escape(title)}</h3>' if title else "")
            + f'<div class="scroll">{_table(part, i)}</div></div>'
            for i, (title, part) in enumerate(split_columns(section))) + "</div>"
        caption = html.escape(section.caption())
        flagged = html.escape(flag_summary(result.flags.get(dataset, {}), info.get("n")))
        imgs = "".join(f'<a href="{html.escape(f)}"><img src="{html.escape(f)}" '
                       f'alt="{html.escape(f)}"></a>' for f in figures)
        sections.append(
            f"<h2>{html.escape(dataset)}</h2><p>{html.escape(str(info.get('source', '')))}"
            f" — {info.get('n')} samples</p><p class=\"caption\">{caption}</p>"
            + (f'<p class="flags">{flagged}</p>' if flagged else "")
            + table + imgs)
    errors = "".join(
        f"<li><code>{html.escape(e['dataset'])} / {html.escape(e['method'])} / "
        f"{html.escape(str(e.get('metric') or '—'))}</code>: {html.escape(e['error'])}</li>"
        for e in result.errors)
    cfg = {k: v for k, v in result.config.items() if k != "datasets"}
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>faithmap evaluation report</title><style>{_STYLE}</style><script>{_CHECK}</script>
</head><body><h1>faithmap evaluation report</h1>
<p>Model <code>{html.escape(str(result.config.get('model')))}</code>. Each cell: mean over
samples <span class="ci">± 95% CI</span>; ↑ higher is better, ↓ lower is better (the
metric's direction); ★ marks the best method only where it beats the runner-up beyond the
spread (the line above each table says how that was tested and lists the metrics with no
clear best); wide tables are split by metric category. Heatmaps (click for full size):
one colour bar per method and its sign convention under the method's name — signed maps
red = positive, blue = negative, non-negative maps on <code>inferno</code>; each map scaled
to its own 99th percentile of |a|; a cell says "all 0" where the map is empty, "NaN map"
(drawn green) where the method gave no map, "fell back" where it used its fallback.</p>
{''.join(sections)}
<h2>Errors</h2>{f'<ul class="errors">{errors}</ul>' if errors else '<p>none</p>'}
<h2>Configuration</h2><pre>{html.escape(json.dumps(cfg, indent=1, default=str))}</pre>
<p>Per-sample scores: <a href="results.csv">results.csv</a>, aggregates:
<a href="summary.csv">summary.csv</a>, everything: <a href="results.json">results.json</a>.</p>
</body></html>"""
    result.write_tables(out)
    return atomic_write_bytes(out / "report.html", page.encode())
