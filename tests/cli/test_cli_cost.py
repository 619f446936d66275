"""The command line states each method's cost before it computes (issues 19 and 20): one
line per run with the declared passes per image (exact or "at most") and the run's total,
a progress bar whose total is known from the start, and `bench` beside the counted passes."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

import faithmap as fm
from faithmap import METHODS
from faithmap.cli import main
from faithmap.methods.boundary import BoundarySaliency

ZOO = ["--model", "zoo:mnist_allconv", "--device", "cpu"]
BSM = ["-o", "steps=3", "-o", "cw_steps=4", "-o", "refine_steps=2", "-o", "cache=False"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def digits(folder, n=2):
    """Real MNIST digits as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    images, _ = fm.data.load("mnist")
    for i in range(n):
        pixels = (images[i, 0].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"d{i}.png")
    return folder


class StopsAtOnce(BoundarySaliency):
    """BSM's declared cost, but the first call stops the run: what was printed before it
    is what the user sees before any compute."""

    def attribute(self, x, target):
        raise KeyboardInterrupt


def test_cost_line_is_printed_before_the_first_batch(tmp_path):
    src = digits(tmp_path / "in")
    with METHODS.scoped("bsm_stops_test", StopsAtOnce):
        result = run("explain", src, *ZOO, "--method", "bsm_stops_test", *BSM,
                     "--out", tmp_path / "o")
    assert result.exit_code == 130, result.output
    model = fm.zoo.load("mnist_allconv")
    cost = BoundarySaliency(model, steps=3, cw_steps=4, refine_steps=2).cost((2, 1, 28, 28))
    line = (f"bsm_stops_test: at most {cost.forward} forward + {cost.backward} backward "
            f"pass(es) per image (an upper bound); 2 image(s) → at most "
            f"{2 * cost.passes} passes ({2 * cost.forward} forward)")
    assert line in result.output
    assert f"0/{2 * cost.forward}" in result.output  # the bar's total, before any pass
    assert result.output.index(line) < result.output.index("interrupted")


def test_exact_cost_line_and_bar_for_integrated_gradients(tmp_path):
    src = digits(tmp_path / "in", n=3)
    result = run("explain", src, *ZOO, "--method", "integrated_gradients", "-o", "n_steps=4",
                 "--images-per-batch", "2", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    # 4 steps + the forward that finds the predicted class, per image
    assert ("integrated_gradients: 5 forward + 4 backward pass(es) per image (exact); "
            "3 image(s) → 27 passes (15 forward)") in result.output
    assert "15/15" in result.output and "measured" not in result.output


def test_srd_with_a_target_counts_images(tmp_path):
    """No pass of SRD's goes through the model itself when the class is given: the line
    says so and the bar counts images."""
    src = digits(tmp_path / "in")
    result = run("explain", src, *ZOO, "--method", "srd", "--target", "3",
                 "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert ("srd: 0 forward + 0 backward pass(es) per image (+ 1 replay forward, "
            "1 relevance backward) (exact); 2 image(s) → 0 passes") in result.output
    assert "2/2" in result.output


def test_bench_prints_declared_beside_counted(tmp_path):
    out = tmp_path / "b.json"
    result = run("bench", "--model", "zoo:mnist_allconv", "--methods", "saliency,bsm",
                 "--images", "2", "--repeats", "1", "--device", "cpu",
                 "--method-option", "bsm.steps=2", "--method-option", "bsm.cw_steps=2",
                 "--out", out)
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    sal, bsm = rows["saliency"], rows["bsm"]
    assert sal["declared_exact"] and sal["declared_forward_per_sample"] == 1
    assert sal["forward_per_sample"] == sal["declared_forward_per_sample"]
    assert bsm["declared_exact"] is False
    assert bsm["forward_per_sample"] <= bsm["declared_forward_per_sample"]
    assert bsm["backward_per_sample"] <= bsm["declared_backward_per_sample"]
    assert "declared forward / backward" in result.output
    assert (f"| ≤ {bsm['declared_forward_per_sample']} / ≤ "
            f"{bsm['declared_backward_per_sample']} |") in result.output


def test_an_upper_bound_bar_ends_full(tmp_path):
    """BSM stops early: the bar starts at the declared bound and ends at the passes run."""
    import re

    src = digits(tmp_path / "in")
    result = run("explain", src, *ZOO, "--method", "bsm", *BSM, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "bsm: at most " in result.output
    states = re.findall(r"(\d+)/(\d+) \[", result.output)
    assert states and states[0][0] == "0"
    done, total = states[-1]
    assert done == total and int(total) <= int(states[0][1])
