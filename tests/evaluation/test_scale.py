"""Per-sample determinism (block size), resume after a crash, failing samples, seeding keys."""

import json
import sys

import pytest
import torch

import faithmap as fm
from faithmap.core.seeding import derived_rows, randn_rows, row_seed, sample_key, sample_keys
from faithmap.evaluation import EvalData
from faithmap.evaluation.blocks import BlockRunner
from model_checks import assert_same_fingerprint, fingerprint
from tiny_models import tiny_cnn

METHODS = ["saliency", "smoothgrad"]
METRICS = ["road", "faithfulness_correlation", "max_sensitivity", "manipulation_attack",
           "sparseness"]
OPTIONS = {"smoothgrad": {"n_samples": 3}}
METRIC_OPTIONS = {"road": {"percentages": [0.1, 0.5]},
                  "faithfulness_correlation": {"n_samples": 4, "subset_size": 8},
                  "max_sensitivity": {"n_samples": 2},
                  "manipulation_attack": {"steps": 2, "n_candidates": 2, "k": 10}}


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(9, 1, 10, 10, generator=g)
    return EvalData("tiny", images, torch.randint(0, 3, (9,), generator=g))


def run(model, data, **kw):
    return fm.evaluate(model, data, METHODS, METRICS, progress=False, curve_samples=0,
                       heatmap_samples=2, seed=7, batch_size=4, method_options=OPTIONS,
                       metric_options=METRIC_OPTIONS, **kw)


def scores(result):
    return {(r["method"], r["metric"], r["sample"]): r["score"] for r in result.samples}


def assert_same_scores(a, b):
    """Equal keys; equal scores up to float rounding of batched kernels (1 vs 9 images)."""
    assert a.keys() == b.keys()
    torch.testing.assert_close(torch.tensor([a[k] for k in a]), torch.tensor([b[k] for k in a]),
                               rtol=1e-4, atol=1e-5)


def test_block_size_does_not_change_any_score(data):
    model = tiny_cnn(in_channels=1, classes=3)
    one, many = run(model, data, block=1), run(model, data, block=16)
    assert not one.errors and not many.errors
    assert len(one.samples) == len(METHODS) * len(METRICS) * 9
    # a sample's noise no longer depends on its block (it moved scores by ~1e-1 before)
    assert_same_scores(scores(one), scores(many))
    assert [r["sample"] for r in one.samples] == [r["sample"] for r in many.samples]
    other_seed = fm.evaluate(model, data, ["smoothgrad"], ["road"], progress=False,
                             curve_samples=0, seed=8, method_options=OPTIONS,
                             metric_options=METRIC_OPTIONS)
    assert [r["score"] for r in other_seed.samples] != [
        s for (m, k, _), s in scores(one).items() if (m, k) == ("smoothgrad", "road")]


def test_sample_keys_map_rows_to_global_indices():
    shape, dt, dev = (2, 3), torch.float32, torch.device("cpu")
    alone = randn_rows(5, [(0, 1)], shape, dt, dev)
    with sample_keys([4, 9]):
        assert sample_key(1) == (9,) and sample_key(7) == (7,)  # beyond the block: own key
        in_block = randn_rows(5, [(0, 0), (1, 1)], shape, dt, dev)
        with derived_rows(torch.tensor([1, 1, 0]), torch.tensor([0, 1, 0])):
            assert sample_key(1) == (9, 1) and sample_key(2) == (4, 0)
    with sample_keys([9]):
        torch.testing.assert_close(randn_rows(5, [(0, 1)], shape, dt, dev)[0], in_block[1])
    assert not torch.equal(alone[0], in_block[1])
    with derived_rows([0], [3]):  # a no-op outside sample_keys
        assert sample_key(0) == (0,)
    assert row_seed(5, *sample_key(3)) == row_seed(5, 3)


def test_resume_after_a_crash_gives_the_same_results(data, tmp_path, monkeypatch):
    model = tiny_cnn(in_channels=1, classes=3)
    full = run(model, data, block=2, out=tmp_path / "full")
    original, calls = BlockRunner.run, []

    def crash_after_three(self, *args):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append(args[2:4])  # (method, samples)
        return original(self, *args)

    monkeypatch.setattr(BlockRunner, "run", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        run(model, data, block=2, out=tmp_path / "part")
    log = (tmp_path / "part" / "progress" / "log.jsonl").read_text().splitlines()
    assert len(log) == 1 + 3  # header + the three finished blocks, on disk already
    with open(tmp_path / "part" / "progress" / "log.jsonl", "a") as f:
        f.write('{"dataset": "tiny", "torn')  # killed while writing a line
    monkeypatch.setattr(BlockRunner, "run", original)
    seen = []
    monkeypatch.setattr(BlockRunner, "run", lambda self, *a: seen.append(a[2:4]) or original(
        self, *a))
    resumed = run(model, data, block=2, out=tmp_path / "part", resume=True)
    done = {(m, s) for m, block in calls for s in block}
    again = {(m, s) for m, block in seen for s in block}
    assert len(done) == 6 and not done & again  # finished samples are skipped
    assert len(done) + len(again) == len(METHODS) * 9
    assert resumed.samples == full.samples
    for name in ("results.csv", "summary.csv"):
        assert (tmp_path / "part" / name).read_text() == (tmp_path / "full" / name).read_text()
    with pytest.raises(ValueError, match="cannot resume"):
        fm.evaluate(model, data, METHODS, METRICS, progress=False, seed=8,
                    out=tmp_path / "part", resume=True)
    with pytest.raises(ValueError, match="needs out"):
        fm.evaluate(model, data, METHODS, progress=False, resume=True)


def test_a_failing_sample_is_reported_and_the_rest_are_scored(data, tmp_path):
    model = tiny_cnn(in_channels=1, classes=3)
    before = fingerprint(model)
    images = data.images.clone()
    images[5, 0, 0, 0] = float("nan")
    bad = EvalData("tiny", images, data.target)
    result = fm.evaluate(model, bad, ["saliency"], ["sparseness", "road"], block=4,
                         progress=False, curve_samples=4, heatmap_samples=2, out=tmp_path)
    assert_same_fingerprint(before, fingerprint(model))
    assert {r["sample"] for r in result.samples} == set(range(9)) - {5}
    (error,) = result.errors
    assert error["samples"] == [5] and error["metric"] is None
    assert "InvalidInputError" in error["error"]
    clean = fm.evaluate(model, data, ["saliency"], ["sparseness", "road"], block=4,
                        progress=False, curve_samples=0)
    assert_same_scores(scores(result), {k: v for k, v in scores(clean).items() if k[2] != 5})
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["errors"][0]["samples"] == [5]


def test_device_option(data):
    model = tiny_cnn(in_channels=1, classes=3)
    result = fm.evaluate(model, data, ["saliency"], ["sparseness"], device="cpu",
                         progress=False, curve_samples=0)
    assert len(result.samples) == 9
    with pytest.raises(ValueError, match="device"):
        fm.evaluate(model, data, ["saliency"], ["sparseness"], device="tpu", progress=False)
    with pytest.raises(ValueError, match="backend"):
        fm.evaluate(model, data, ["saliency"], ["sparseness"], backend="dask", progress=False)


def test_missing_ray_names_the_extra(data, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(ImportError, match=r"faithmap\[ray\]"):
        fm.evaluate(tiny_cnn(in_channels=1, classes=3), data, ["saliency"], ["sparseness"],
                    backend="ray", progress=False)
    from click.testing import CliRunner

    from faithmap.cli import main

    out = CliRunner().invoke(main, ["evaluate", "--model", "tiny_models:tiny_cnn", "--data",
                                    "grid", "--ray", "--n", "2"])
    assert out.exit_code != 0 and "faithmap[ray]" in out.output
