"""The Ray backend on a local 2-worker instance: same per-sample scores as one process,
a worker that dies mid-run is restarted and its block retried, and the CLI's --ray."""

import json
import os

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import faithmap as fm
from faithmap.cli import main
from faithmap.evaluation import EvalData
from tiny_models import tiny_cnn

ray = pytest.importorskip("ray")


class DiesOnce(nn.Module):
    """Kills its worker process the first time it runs outside the test process (a crash
    that Ray must survive: the actor is restarted and the block retried)."""

    def __init__(self, model: nn.Module, flag: str) -> None:
        super().__init__()
        self.model, self.flag, self.home = model, flag, os.getpid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if os.getpid() != self.home and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os._exit(1)
        return self.model(x)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def test_ray_run_equals_single_process_and_survives_a_dead_worker(local_ray, tmp_path):
    g = torch.Generator().manual_seed(3)
    data = EvalData("tiny", torch.rand(8, 1, 10, 10, generator=g),
                    torch.randint(0, 3, (8,), generator=g))
    flag = tmp_path / "died"
    model = DiesOnce(tiny_cnn(in_channels=1, classes=3), str(flag))
    kw = dict(methods=["saliency", "smoothgrad"],
              metrics=["road", "faithfulness_correlation", "max_sensitivity", "sparseness"],
              progress=False, curve_samples=4, heatmap_samples=2, seed=5, block=3,
              method_options={"smoothgrad": {"n_samples": 3}},
              metric_options={"road": {"percentages": [0.1, 0.5]},
                              "faithfulness_correlation": {"n_samples": 4, "subset_size": 8},
                              "max_sensitivity": {"n_samples": 2}})
    local = fm.evaluate(model, data, out=tmp_path / "local", **kw)
    remote = fm.evaluate(model, data, out=tmp_path / "ray", backend="ray", ray_workers=2, **kw)
    assert flag.exists()  # a worker died, was restarted, and its block was run again
    assert not local.errors and not remote.errors
    assert len(remote.samples) == 2 * 4 * 8
    assert remote.samples == local.samples  # identical per-sample scores, same order
    assert remote.curves == local.curves
    for name in ("results.csv", "summary.csv"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text()
    assert ray.is_initialized()  # an instance it did not start is left running


def test_cli_ray_flag(local_ray, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, [
        "evaluate", "--model", "zoo:mnist_allconv", "--data", "grid", "--methods", "saliency",
        "--metrics", "sparseness,pointing_game", "--n", "4", "--block", "2", "--out", str(out),
        "--ray", "--ray-workers", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["samples"]) == 2 * 4 and not saved["errors"]


def test_cli_explain_on_ray_equals_local(local_ray, tmp_path):
    """faithmap explain --ray: the same maps and summary as a local run; a corrupt file is
    reported and the exit status is 1 in both."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray", "--ray-workers", "2"])):
        out = tmp_path / name
        result = CliRunner().invoke(main, [
            "explain", str(folder), "--model", "zoo:mnist_vgg", "--method", "smoothgrad",
            "-o", "n_samples=3", "--images-per-batch", "2", "--device", "cpu", "--out", str(out),
            *extra])
        assert result.exit_code == 1, result.output
        runs[name] = json.loads((out / "summary.json").read_text())
        assert [f["image"] for f in runs[name]["failed"]] == [str(folder / "broken.png")]
    local, remote = runs["local"], runs["ray"]
    assert [r["image"] for r in remote["explained"]] == [r["image"] for r in local["explained"]]
    for a, b in zip(local["explained"], remote["explained"]):
        assert (a["target"], a["predicted"]) == (b["target"], b["predicted"])
        np.testing.assert_allclose(np.load(b["npy"]), np.load(a["npy"]), rtol=1e-5, atol=1e-7)
