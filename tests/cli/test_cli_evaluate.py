"""`faithmap evaluate` on a tiny run, and the report rendered in headless Chromium."""

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from faithmap.cli import main


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    result = CliRunner().invoke(main, [
        "evaluate", "--model", "zoo:mnist_allconv", "--data", "grid,cluttered",
        "--methods", "saliency,integrated_gradients,gradcam",
        "--metrics", "deletion,insertion,pointing_game,energy_pointing_game,"
                     "grid_pointing_game,sparseness",
        "--n", "8", "--out", str(out), "--method-option", "integrated_gradients.n_steps=8",
        "--metric-option", "deletion.step=196", "--metric-option", "insertion.step=196"])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output
    return out


def test_evaluate_cli_outputs(report_dir):
    summary = json.loads((report_dir / "results.json").read_text())["summary"]
    datasets = {r["dataset"] for r in summary}
    assert datasets == {"grid", "cluttered"}
    grid_metrics = {r["metric"] for r in summary if r["dataset"] == "grid"}
    assert "grid_pointing_game" in grid_metrics
    assert "grid_pointing_game" not in {r["metric"] for r in summary
                                        if r["dataset"] == "cluttered"}
    assert all(r["n"] == 8 for r in summary)


def test_bad_scoped_option_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--model", "zoo:mnist_allconv", "--data",
                                       "grid", "--method-option", "n_steps=3"])
    assert result.exit_code == 2 and "NAME.KEY=VALUE" in result.output


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    url = (report_dir / "report.html").as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120).stdout
    assert 'data-images-loaded="4/4"' in dom  # curves + heatmaps for both datasets
    assert 'data-table-rows="6"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1280,2000", url],
                   capture_output=True, timeout=120)
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    lo, hi = pixels.getextrema()
    assert shot.stat().st_size > 20_000 and hi - lo > 100  # a rendered page, not a blank one
