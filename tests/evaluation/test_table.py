"""One table builder (evaluation.table): the text table, the HTML report and the Markdown
results page show the same cells, numbers and best methods."""

import html
import math
import random
import re

from faithmap.evaluation import EvaluationResult
from faithmap.evaluation.report_html import write_report
from faithmap.evaluation.report_markdown import render
from faithmap.evaluation.table import (
    CI,
    PAIRED,
    best_methods,
    build_table,
    separated_best,
    split_columns,
)

NUMBER = re.compile(r"-?\d+\.\d{3}")
INFO = {"deletion": {"higher_is_better": False, "category": "faithfulness"},
        "insertion": {"higher_is_better": True, "category": "faithfulness"},
        "pointing_game": {"higher_is_better": True, "category": "localisation"}}


def _result() -> EvaluationResult:
    rnd = random.Random(0)
    result = EvaluationResult(config={"model": "m", "seed": 0, "n": 4, "methods": [],
                                      "datasets": {"grid": {"n": 4}, "cluttered": {"n": 4}}},
                              metric_info=INFO)
    for dataset in ("grid", "cluttered"):
        for method in ("saliency", "srd", "gradcam"):
            for metric in INFO:
                if (dataset, method, metric) == ("cluttered", "gradcam", "insertion"):
                    continue  # a missing cell
                n = 1 if method == "srd" and metric == "deletion" else 4  # no CI
                scores = [rnd.random() + (2.0 if (method, metric) == ("srd", "insertion") else 0)
                          for _ in range(n)]  # srd is best on insertion beyond the spread
                if metric == "pointing_game":
                    scores = [1.0] * n  # a tie: the first method is best
                if (dataset, method, metric) == ("grid", "gradcam", "deletion"):
                    scores = [math.nan] * n  # no finite mean
                result.add(dataset, method, metric, scores, 0)
    return result


def _cell(text: str, best: bool) -> tuple[list[str], bool]:
    return NUMBER.findall(text), best


def _from_text(text: str) -> dict:
    tables, current = {}, None
    for line in text.splitlines():
        if line.startswith("["):
            current = tables.setdefault(line.strip("[]"), {})
        elif current is not None and line and not line.startswith(("method", "(")):
            method, *cells = line.split()
            current[method] = [_cell(c, c.endswith("*")) for c in cells]
        elif not line:
            current = None
    return tables


def _from_html(page: str) -> dict:
    tables = {}
    for dataset, body in re.findall(r"<h2>(\w+)</h2>.*?<tbody>(.*?)</tbody>", page):
        rows = re.findall(r'<tr><td class="method">(.*?)</td>(.*?)</tr>', body)
        tables[dataset] = {html.unescape(m): [_cell(c, cls == "best") for cls, c in
                                              re.findall(r'<td(?: class="([^"]*)")?>(.*?)</td>',
                                                         cells)]
                           for m, cells in rows}
    return tables


def _from_markdown(page: str) -> dict:
    tables, current = {}, None
    for line in page.splitlines():
        if line.startswith("## "):
            current = tables.setdefault(line[3:], {}) if line[3:] in ("grid", "cluttered") \
                else None
        elif current is not None and line.startswith("| ") and not line.startswith("| method"):
            method, *cells = [c.strip() for c in line.strip("|").split("|")]
            current[method] = [_cell(c, c.startswith("**")) for c in cells]
    return tables


def test_build_table_cells_best_and_arrows():
    result = _result()
    sections = build_table(result.summary(), result.metric_info)
    assert [s.dataset for s in sections] == ["grid", "cluttered"]
    grid = sections[0]
    assert [(c.metric, c.arrow, c.category) for c in grid.columns] == [
        ("deletion", "↓", "faithfulness"), ("insertion", "↑", "faithfulness"),
        ("pointing_game", "↑", "localisation")]
    cells = dict(grid.rows)
    assert cells["gradcam"][0] is None  # NaN mean
    assert not cells["srd"][0].has_ci and cells["saliency"][0].has_ci
    assert [m for m, c in grid.rows if c[2].best] == []  # a tie: no best
    assert [m for m, c in grid.rows if c[1].best] == ["srd"]  # separated beyond the CI
    assert "pointing_game" in grid.unclear and "insertion" not in grid.unclear
    assert grid.basis == CI  # a summary alone: non-overlapping CIs
    assert dict(sections[1].rows)["gradcam"][1] is None  # not scored
    best = best_methods(result.summary())
    assert best == result.best()
    assert best[("grid", "pointing_game")] == "saliency"  # the leader on a tie: first seen
    clear, basis = separated_best(result.summary())
    for section in sections:
        for method, row in section.rows:
            for column, cell in zip(section.columns, row):
                if cell is not None:
                    assert cell.best == (clear[(section.dataset, column.metric)] == method)
    deletion = {m: c[0].mean for m, c in grid.rows if c[0] is not None}
    assert best[("grid", "deletion")] == min(deletion, key=deletion.get)  # lower is better


def test_the_three_renderers_agree(tmp_path):
    result = _result()
    text = _from_text(result.table())
    page = write_report(result, tmp_path).read_text()
    md = render(result.to_json())
    markdown = _from_markdown(md)
    assert text == _from_html(page) == markdown
    header = result.table().splitlines()[2].split()  # after the name and the caption
    assert header == ["method", "deletion↓", "insertion↑", "pointing_game↑"]
    heads = re.findall(r"<th>(\w+) (.)<br>", page.replace("<wbr>", ""))
    assert heads[:3] == [("deletion", "↓"), ("insertion", "↑"), ("pointing_game", "↑")]
    assert "| method | deletion ↓ | insertion ↑ | pointing_game ↑ |" in md
    expected = {}
    for section in build_table(result.summary(), result.metric_info):
        expected[section.dataset] = {
            method: [([], False) if c is None else
                     ([f"{c.mean:.3f}"] + ([f"{c.ci95:.3f}"] if c.has_ci else []), c.best)
                     for c in cells]
            for method, cells in section.rows}
    assert text == expected
    marked = sum(best for rows in text.values() for cells in rows.values() for _, best in cells)
    clear, basis = separated_best(result.summary(), result.samples)
    assert basis == PAIRED and marked == sum(m is not None for m in clear.values()) == 2
    assert [s.basis for s in result.sections()] == [PAIRED, PAIRED]


def _two(a, b, metric="insertion"):
    result = EvaluationResult(config={"datasets": {"d": {"n": len(a), "seeds": [0]}}},
                              metric_info=INFO)
    result.add("d", "x", metric, a, 0)
    result.add("d", "y", metric, b, 0)
    return result


def test_no_best_where_the_lead_is_within_the_spread(tmp_path):
    """Overlapping scores: no bold/star in any renderer. Separated: the leader is marked."""
    rnd = random.Random(1)
    a = [rnd.random() for _ in range(30)]
    b = [rnd.random() for _ in range(30)]
    for samples in (None, _two(a, b).samples):
        section = build_table(_two(a, b).summary(), INFO, samples)[0]
        assert not any(c.best for _, cells in section.rows for c in cells)
        assert section.unclear == ["insertion"]
    overlap = _two(a, b)
    assert "*" not in overlap.table().split("\n", 2)[2]
    assert "★" not in write_report(overlap, tmp_path).read_text().split("</p>", 1)[1]
    assert "**" not in render(overlap.to_json()).split("## d", 1)[1].split("## Paper")[0]
    clear = _two([v + 1 for v in a], b)
    assert [m for m, c in clear.sections()[0].rows if c[0].best] == ["x"]


def test_paired_test_sees_what_overlapping_cis_hide():
    """x = y + 0.05 on every sample, with a large spread over samples: the CIs overlap (no
    best from the summary alone), the paired comparison separates them (best with samples)."""
    rnd = random.Random(2)
    b = [rnd.random() for _ in range(30)]
    a = [v + 0.05 + 0.001 * rnd.random() for v in b]
    result = _two(a, b)
    rows = {r["method"]: r for r in result.summary()}
    assert rows["x"]["mean"] - rows["x"]["ci95"] < rows["y"]["mean"] + rows["y"]["ci95"]
    assert separated_best(result.summary()) == ({("d", "insertion"): None}, CI)
    assert separated_best(result.summary(), result.samples) == ({("d", "insertion"): "x"},
                                                                 PAIRED)


def test_caption_says_n_seeds_policy_and_predicted_fraction():
    result = _two([0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    result.config["datasets"]["d"].update(target_policy={"insertion": "predicted",
                                                         "pointing_game": "label"},
                                          predicted_fraction=0.21)
    text = result.sections()[0].caption()
    assert text.startswith("n = 3; seeds [0]; target — predicted class: insertion; label: "
                           "pointing_game; label = model's prediction for 21.0% of samples")
    assert "paired per-sample comparison" in text and "no method best" in text
    assert text in result.table() and text in render(result.to_json())


def test_split_columns_by_category_keeps_rows_cells_and_unclear():
    info = {f"f{i}": {"higher_is_better": True, "category": "faithfulness"} for i in range(8)}
    info |= {"loc": {"higher_is_better": True, "category": "localisation"}, "x": {}}
    result = EvaluationResult(config={"datasets": {"d": {"n": 3}}}, metric_info=info)
    for k, method in enumerate(("a", "b")):
        for metric in info:
            result.add("d", method, metric, [k + 0.1, k + 0.2, k + 0.3], 0)
    section = result.sections()[0]
    assert split_columns(section, 10) == [("", section)]  # fits: one table
    parts = split_columns(section, 6)
    assert [(t, [c.metric for c in p.columns]) for t, p in parts] == [
        ("faithfulness (1/2)", ["f0", "f1", "f2", "f3"]),
        ("faithfulness (2/2)", ["f4", "f5", "f6", "f7"]),  # balanced, not 6 + 2
        ("localisation", ["loc"]), ("other", ["x"])]
    whole = dict(section.rows)
    for _, part in parts:
        assert [m for m, _ in part.rows] == ["a", "b"] and part.info == section.info
        index = [[c.metric for c in section.columns].index(c.metric) for c in part.columns]
        assert {m: cells for m, cells in part.rows} == {
            m: [whole[m][i] for i in index] for m in whole}
        assert part.unclear == [m for m in section.unclear
                                if m in {c.metric for c in part.columns}]
    assert sum(c.best for _, p in parts for _, cells in p.rows for c in cells) == 9
