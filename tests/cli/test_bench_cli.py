"""`faithmap bench`: per-method throughput rows; failures are reported, not fatal."""

import json

import pytest
import torch
from click.testing import CliRunner

from faithmap.cli import main
from faithmap.evaluation.throughput import measure
from tiny_models import tiny_cnn


def test_bench_command_rows_and_failures(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, [
        "bench", "--model", "zoo:mnist_allconv", "--methods", "saliency,gradcam,no_such",
        "--images", "2", "--repeats", "1", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 1, result.output  # one method failed
    assert "| saliency |" in result.output and "| no_such | failed: ValueError" in result.output
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["saliency", "gradcam", "no_such"]
    for r in rows[:2]:
        assert r["seconds"] > 0 and r["fwd_bwd_seconds"] > 0
        assert r["samples_per_s"] == pytest.approx(2 / r["seconds"])
        assert r["cost_in_fwd_bwd"] == pytest.approx(r["seconds"] / r["fwd_bwd_seconds"])


def test_measure_leaves_the_model_alone_and_checks_repeats():
    from model_checks import assert_same_fingerprint, fingerprint

    model = tiny_cnn()
    before = fingerprint(model)
    rows = measure(model, torch.rand(2, 3, 16, 16), ["integrated_gradients"],
                   {"integrated_gradients": {"n_steps": 4}}, repeats=2)
    assert rows[0]["method"] == "integrated_gradients" and "error" not in rows[0]
    assert_same_fingerprint(before, fingerprint(model))
    with pytest.raises(ValueError, match="repeats"):
        measure(model, torch.rand(2, 3, 16, 16), ["saliency"], repeats=0)
