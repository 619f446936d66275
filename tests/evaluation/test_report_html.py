"""The HTML report is readable: 13 methods × all 16 metrics on real digits — tables split so
nothing scrolls at 1400 px, one colour per method in the curves, notes on empty, NaN and
fallback maps — and it renders in headless Chromium (images load, no console errors)."""

import os
import shutil
from pathlib import Path

import pytest
import torch

import faithmap as fm
import faithmap.data as fd
from faithmap.evaluation import EvaluationResult
from faithmap.evaluation.blocks import metric_function
from faithmap.evaluation.report_html import write_report

METHODS = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "vargrad",
           "gradcam", "srd", "zennit:EpsilonPlusFlat", "bsm", "big", "neflag", "dance",
           "captum:Occlusion"]
N = 4
CHROMIUM = os.environ.get("FAITHMAP_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser")


def wide_result() -> EvaluationResult:
    """13 methods on every metric for two datasets of real MNIST digits: ``big`` fell back
    on sample 1 (a NaN map), ``dance`` gave all-zero maps."""
    images, labels = fd.load("mnist", split="test")
    images, labels = images[:N], labels[:N]
    metrics = fm.available_metrics()
    gen = torch.Generator().manual_seed(0)
    result = EvaluationResult(
        config={"model": "zoo:mnist_allconv", "methods": METHODS, "metrics": metrics,
                "datasets": {d: {"source": f"{d} digits", "n": N, "seeds": [0]}
                             for d in ("grid", "cluttered")}},
        metric_info={m: {"higher_is_better": metric_function(m).higher_is_better,
                         "category": metric_function(m).category} for m in metrics})
    fractions = [i / 8 for i in range(9)]
    for dataset in ("grid", "cluttered"):
        result.images[dataset] = images
        result.shown_labels[dataset] = [f"label {int(t)}" for t in labels]
        result.maps[dataset], result.curves[dataset] = {}, {}
        for k, method in enumerate(METHODS):
            maps = images * (1 + k) - 0.3 * k * images.flip(-1)
            if method == "big":
                maps[1] = float("nan")
            if method == "dance":
                maps = torch.zeros_like(images)
            result.maps[dataset][method] = maps
            result.curves[dataset][method] = {
                "fractions": fractions, "deletion": [(1 - f) ** (1 + k / 4) for f in fractions],
                "insertion": [f ** (1 + k / 4) for f in fractions]}
            for metric in metrics:
                result.add(dataset, method, metric,
                           (torch.rand(N, generator=gen) + k / 10).tolist(), 0)
        result.flags[dataset] = {"big": {"fallback": {"predicted": [1]}},
                                 "dance": {"empty": {"predicted": list(range(N))}}}
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return write_report(wide_result(), out)


def test_curves_one_colour_per_method_and_cell_notes(monkeypatch, tmp_path):
    import faithmap.viz.figures as figures

    seen = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: seen.append(fig) or path)
    result = wide_result()
    result.config["datasets"].pop("cluttered")
    monkeypatch.setattr("faithmap.evaluation.report_html.EvaluationResult.write_tables",
                        lambda self, out: None)
    write_report(result, tmp_path)
    curves, grid = seen
    for ax in curves.axes[:2]:
        colours = {tuple(line.get_color()) for line in ax.get_lines()}
        assert len(ax.get_lines()) == len(colours) == 13
    texts = {}
    for ax in grid.axes:
        for t in ax.texts:
            spec = ax.get_subplotspec()
            texts[(spec.rowspan.start, spec.colspan.start)] = t.get_text()
    big, dance = 1 + METHODS.index("big"), 1 + METHODS.index("dance")
    assert texts.pop((1, big)) == "NaN map\nfell back"
    assert {texts.pop((r, dance)) for r in range(N)} == {"all 0"}
    assert texts == {}  # no other cell has a note
    bars = [ax for ax in grid.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 13  # a colour bar under every method's column
    titles = [ax.get_title() for ax in grid.axes[:14]]
    assert titles[1] == "saliency\nnon-negative" and titles[2] == "input_x_gradient\nsigned"


def test_wide_tables_are_split_by_metric_category(report):
    page = report.read_text()
    parts = [p.split("</h3>")[0] for p in page.split('<h3 class="part">')[1:]]
    assert parts == ["complexity", "faithfulness (1/2)", "faithfulness (2/2)", "localisation",
                     "randomisation", "robustness"] * 2
    assert page.count('<table class="metrics"') == 12
    assert all(page.count(f'<td class="method">{m}</td>') == 12 for m in METHODS[:3])


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if CHROMIUM is None or not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    return sync_api


def screenshot(html: Path, png: Path, width: int = 1400, height: int = 1700,
               scale: float = 0.7) -> Path:
    """The top ``width`` × ``height`` px of the report in headless Chromium, shrunk by
    ``scale`` and stored with a 256-colour palette (docs/img/report.png: a few hundred KB).
    ``python tests/evaluation/test_report_html.py REPORT.html OUT.png`` makes it."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            page.screenshot(path=str(png))
        finally:
            browser.close()
    with Image.open(png) as img:
        small = img.convert("RGB").resize((round(width * scale), round(height * scale)),
                                          Image.LANCZOS)
    small.quantize(256).save(png, optimize=True)
    return png


def test_report_renders_in_headless_chromium_at_1400_px(report, tmp_path):
    sync_api = _browser()
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate("Array.from(document.images).map(i => "
                                   "[i.getAttribute('src'), i.complete, i.naturalWidth])")
            width = page.evaluate("document.documentElement.scrollWidth")
            overflowing = page.evaluate(
                "Array.from(document.querySelectorAll('div.scroll'))"
                ".filter(d => d.scrollWidth > d.clientWidth).length")
            loaded = page.evaluate("document.body.dataset.imagesLoaded")
            rows = page.evaluate("document.body.dataset.tableRows")
        finally:
            browser.close()
    assert len(images) == 4 and all(done and w > 0 for _, done, w in images), images
    assert loaded == "4/4" and rows == str(2 * len(METHODS))
    assert problems == []
    assert width <= 1400 and overflowing == 0  # no horizontal scrolling anywhere
    from PIL import Image

    with Image.open(screenshot(report, tmp_path / "report.png")) as shot:
        lo, hi = shot.convert("L").getextrema()
    assert hi - lo > 100  # a rendered page, not a blank one


if __name__ == "__main__":
    import sys

    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
