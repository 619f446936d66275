"""The evaluation report: tables, figures and one self-describing HTML page."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..core.files import atomic_write_bytes
from ..viz.figures import curves_figure, heatmap_grid
from .results import EvaluationResult
from .table import Cell, Section, flag_summary

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3} td.method{text-align:left;font-weight:600}
td.best{background:#e6f4ea;font-weight:700} .ci{color:#777;font-size:12px}
.caption{font-size:13px;color:#444} .flags{font-size:13px;color:#a05a00}
.cat{font-size:11px;color:#666;font-weight:normal} img{max-width:100%;margin:0.5em 0}
.errors{color:#a00} .scroll{overflow-x:auto} code{background:#f5f5f5;padding:1px 4px}
"""
_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
  document.body.setAttribute('data-table-rows',
    document.querySelectorAll('table.metrics tbody tr').length);
});
"""


def _cell(cell: Cell | None) -> str:
    if cell is None:
        return "<td>—</td>"
    ci = f' <span class="ci">±{cell.ci95:.3f}</span>' if cell.has_ci else ""
    star = " ★" if cell.best else ""
    return f'<td class="{"best" if cell.best else ""}">{cell.mean:.3f}{ci}{star}</td>'


def _table(section: Section) -> str:
    head = "".join(
        f'<th>{html.escape(c.metric)} {c.arrow}'
        f'<br><span class="cat">{html.escape(c.category)}</span></th>'
        for c in section.columns)
    body = "".join(
        f'<tr><td class="method">{html.escape(method)}</td>'
        + "".join(_cell(c) for c in cells) + "</tr>"
        for method, cells in section.rows)
    return (f'<table class="metrics"><thead><tr><th>method</th>{head}</tr></thead>'
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
        table = _table(section)
        caption = html.escape(section.caption())
        flagged = html.escape(flag_summary(result.flags.get(dataset, {}), info.get("n")))
        imgs = "".join(f'<img src="{html.escape(f)}" alt="{html.escape(f)}">' for f in figures)
        sections.append(
            f"<h2>{html.escape(dataset)}</h2><p>{html.escape(str(info.get('source', '')))}"
            f" — {info.get('n')} samples</p><p class=\"caption\">{caption}</p>"
            + (f'<p class="flags">{flagged}</p>' if flagged else "")
            + f"<div class=\"scroll\">{table}</div>"
            f"{imgs}")
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
clear best). Heatmaps: one colour bar per method; signed maps red = positive, blue =
negative; each map scaled to its own 99th percentile of |a|.</p>
{''.join(sections)}
<h2>Errors</h2>{f'<ul class="errors">{errors}</ul>' if errors else '<p>none</p>'}
<h2>Configuration</h2><pre>{html.escape(json.dumps(cfg, indent=1, default=str))}</pre>
<p>Per-sample scores: <a href="results.csv">results.csv</a>, aggregates:
<a href="summary.csv">summary.csv</a>, everything: <a href="results.json">results.json</a>.</p>
</body></html>"""
    result.write_tables(out)
    return atomic_write_bytes(out / "report.html", page.encode())
