"""The command line is never silently wrong (issue 19): every hostile case is one line
naming the file or option, nothing is lost or overwritten, a re-run resumes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from faithmap import METHODS, Explainer
from faithmap.cli import main
from tiny_models import tiny_cnn

TINY = ["--model", "tiny_models:tiny_cnn", "--size", "16"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *words):
    """Exit ≠ 0, no traceback, and one 'Error:' line naming ``words``."""
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                     SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    assert len(errors[0]) < 400, errors[0]
    for w in words:
        assert w in errors[0], errors[0]


def photo(path, value=128, size=(20, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- images


def test_sixteen_bit_png_is_explained_at_its_true_range(tmp_path):
    img = tmp_path / "g16.png"
    Image.fromarray(np.full((16, 16), 16384, np.uint16)).save(img)  # a quarter of full scale
    out = tmp_path / "o"
    result = run("explain", img, *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    panel = np.asarray(Image.open(out / "g16.saliency.png"))[:16, :16]  # the image panel
    assert abs(float(panel.mean()) - 16384 / 65535 * 255) < 2  # not solid white (255)


def bomb_png(path, width=20000, height=10000):
    """A valid PNG whose header claims width×height grey pixels (over Pillow's limit)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))
    return path


def test_huge_image_is_skipped_and_the_run_carries_on(tmp_path):
    folder = tmp_path / "in"
    photo(folder / "a.png")
    bomb_png(folder / "huge.png")
    out = tmp_path / "o"
    result = run("explain", folder, *TINY, "--out", out)
    assert result.exit_code == 1, result.output
    assert "huge.png" in result.output and "too large" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [Path(r["image"]).name for r in summary["explained"]] == ["a.png"]
    assert [Path(r["image"]).name for r in summary["failed"]] == ["huge.png"]


# ---------------------------------------------------------------- options that do not apply


def test_weights_for_a_zoo_model_is_an_error(tmp_path):
    w = tmp_path / "w.pt"
    torch.save(tiny_cnn().state_dict(), w)
    result = run("explain", photo(tmp_path / "a.png"), "--model", "zoo:mnist_vgg",
                 "--weights", w, "--out", tmp_path / "o")
    assert_one_line_error(result, "--weights", "zoo:mnist_vgg")
    assert not (tmp_path / "o" / "a.saliency.npy").exists()


DETECTOR = """
from faithmap.zoo.checkpoints import load_classifier

def detector():
    return load_classifier("cluttered_blackbox")
"""


def test_comet_only_for_the_model_it_was_trained_with(tmp_path, monkeypatch):
    digit = tmp_path / "digit.png"
    Image.fromarray(np.zeros((56, 56), np.uint8)).save(digit)
    result = run("explain", digit, "--model", "zoo:mnist_allconv", "--method", "comet",
                 "--size", "56", "--out", tmp_path / "o")
    assert_one_line_error(result, "comet", "zoo:mnist_allconv")
    # its own detector, as a factory module in the current directory (no PYTHONPATH)
    project = tmp_path / "project"
    project.mkdir()
    (project / "mydetector.py").write_text(DETECTOR)
    monkeypatch.chdir(project)
    assert str(project) not in sys.path
    result = run("explain", digit, "--model", "mydetector:detector", "--method", "comet",
                 "--size", "56", "--out", tmp_path / "o2")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "o2" / "digit.comet.npy").shape == (1, 56, 56)
    assert str(project) not in sys.path  # the import path is restored


def test_model_that_cannot_take_the_size_is_refused_before_the_run(tmp_path):
    result = run("explain", photo(tmp_path / "a.png"), "--model", "zoo:mnist_vgg",
                 "--size", "56", "--out", tmp_path / "o")
    assert_one_line_error(result, "zoo:mnist_vgg", "1×56×56")
    assert not (tmp_path / "o" / "summary.json").exists()


def test_evaluate_refuses_a_dataset_the_model_cannot_take(tmp_path):
    result = run("evaluate", "--model", "zoo:mnist_vgg", "--data", "cluttered", "--methods",
                 "saliency", "--metrics", "deletion", "--n", "2", "--out", tmp_path / "e")
    assert_one_line_error(result, "zoo:mnist_vgg", "cluttered", "1×56×56")
    assert "mat1" in result.output  # the reason, in the same line
    assert not (tmp_path / "e" / "results.json").exists()


# ---------------------------------------------------------------- weights files


def test_text_file_as_weights(tmp_path):
    w = tmp_path / "weights.pt"
    w.write_text("these are not weights\n")
    result = run("explain", photo(tmp_path / "a.png"), *TINY, "--weights", w,
                 "--out", tmp_path / "o")
    assert_one_line_error(result, "--weights", "weights.pt", "not a PyTorch state dict")


def test_dataparallel_state_dict_is_stripped(tmp_path):
    net = tiny_cnn(seed=3)
    w = tmp_path / "dp.pt"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, w)
    img = photo(tmp_path / "a.png", 90)
    result = run("explain", img, *TINY, "--weights", w, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "module." in result.output and "stripped" in result.output
    from faithmap.data.images import read_image

    x = read_image(img, 16)[None]
    expected = torch.autograd.functional.jacobian(lambda t: net(t)[0, net(x).argmax()], x)
    np.testing.assert_allclose(np.load(tmp_path / "o" / "a.saliency.npy"),
                               expected[0].abs().numpy(), rtol=1e-4, atol=1e-6)


def test_mismatched_architecture_is_one_short_line(tmp_path):
    w = tmp_path / "other.pt"
    torch.save(tiny_cnn(classes=3).state_dict(), w)  # head 3 classes, model 5
    result = run("explain", photo(tmp_path / "a.png"), *TINY, "--weights", w,
                 "--out", tmp_path / "o")
    assert_one_line_error(result, "other.pt", "shape mismatch", "head.weight")
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), w)
    result = run("explain", photo(tmp_path / "a.png"), *TINY, "--weights", w,
                 "--out", tmp_path / "o")
    assert_one_line_error(result, "missing key", "unexpected key")
    assert len(result.output) < 600


# ---------------------------------------------------------------- names and values


@pytest.mark.parametrize("extra, words", [
    (["--method", "nope"], ["unknown method", "nope"]),
    (["-o", "colour=3"], ["saliency", "no option 'colour'", "batch_size"]),
    (["--method", "integrated_gradients", "-o", "n_steps=0"], ["n_steps"]),
    (["--target", "7"], ["--target", "7", "5 classes"]),
    (["--target", "-1"], ["--target", "-1"]),
])
def test_unknown_methods_options_and_targets(tmp_path, extra, words):
    result = run("explain", photo(tmp_path / "a.png"), *TINY, "--out", tmp_path / "o", *extra)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "o" / "summary.json").exists()  # refused before any compute


@pytest.mark.parametrize("spec, words", [
    ("resnet18", ["model spec"]),
    ("torchvision:nope", ["nope"]),
    ("no_such_module_here:factory", ["no_such_module_here", "current directory"]),
    ("tiny_models:nope", ["nope"]),
])
def test_bad_model_specs(tmp_path, spec, words):
    result = run("explain", photo(tmp_path / "a.png"), "--model", spec,
                 "--out", tmp_path / "o")
    assert_one_line_error(result, *words)


def test_batch_size_zero_and_changed_resume_are_one_line(tmp_path):
    result = run("evaluate", "--model", "zoo:mnist_allconv", "--data", "grid",
                 "--batch-size", "0")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--batch-size" in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)
    args = ["evaluate", "--model", "zoo:mnist_allconv", "--data", "grid", "--methods",
            "saliency", "--metrics", "sparseness", "--n", "2", "--out", tmp_path / "e"]
    assert run(*args).exit_code == 0
    result = run(*args, "--seed", "1", "--resume")
    assert_one_line_error(result, "cannot resume")
    result = run(*args[:-2], "--metrics", "nope_metric", "--out", tmp_path / "e2")
    assert_one_line_error(result, "nope_metric")
    result = run(*args[:6], "no_such_method", *args[7:])
    assert_one_line_error(result, "no_such_method")


# ---------------------------------------------------------------- the output folder


def test_out_that_is_a_file_or_not_writable_is_found_before_compute(tmp_path, monkeypatch):
    img = photo(tmp_path / "a.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run("explain", img, *TINY, "--out", blocker), "file")
    assert_one_line_error(run("explain", img, *TINY, "--out", blocker / "sub"), "--out",
                          "not writable")
    calls = []
    monkeypatch.setattr("faithmap.cli.explain.build", lambda *a, **k: calls.append(a))
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o555)
    try:
        if os.access(readonly, os.W_OK):  # root ignores permissions: simulate the refusal
            def refuse(*a, **k):
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr("tempfile.NamedTemporaryFile", refuse)
        result = run("explain", img, *TINY, "--out", readonly)
        assert_one_line_error(result, "--out", "not writable")
        assert calls == []  # no explainer was built
    finally:
        readonly.chmod(0o755)


def test_out_equal_to_the_input_folder_never_takes_outputs_as_inputs(tmp_path):
    folder = tmp_path / "photos"
    photo(folder / "x.png")
    for _ in range(2):
        result = run("explain", folder, *TINY, "--out", folder, "--no-resume")
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert names == ["summary.json", "x.png", "x.saliency.npy", "x.saliency.png"]
    # an input explicitly named keeps being an input (never overwritten)
    result = run("explain", folder / "x.saliency.png", *TINY, "--out", folder)
    assert result.exit_code == 0 and (folder / "x.saliency.saliency.png").exists()


def test_nested_folders_keep_their_relative_paths(tmp_path):
    folder = tmp_path / "in"
    photo(folder / "a" / "x.png", 10)
    photo(folder / "b" / "x.png", 200)
    photo(folder / "x.png", 100)
    out = tmp_path / "o"
    result = run("explain", folder, *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    for rel in ("a/x.saliency.png", "b/x.saliency.npy", "x.saliency.png"):
        assert (out / rel).is_file(), rel
    assert not list(out.rglob("*-1.*"))
    summary = json.loads((out / "summary.json").read_text())
    pairs = {Path(r["image"]).relative_to(folder).as_posix():
             Path(r["png"]).relative_to(out).as_posix() for r in summary["explained"]}
    assert pairs == {"a/x.png": "a/x.saliency.png", "b/x.png": "b/x.saliency.png",
                     "x.png": "x.saliency.png"}
    assert not [p for p in out.rglob(".*")]  # no temporary files left


# ---------------------------------------------------------------- resume and interrupt


class Counting(Explainer):
    """Zeros; counts images; raises KeyboardInterrupt on call ``stop_at`` (a Ctrl-C)."""

    seen: list = []
    stop_at = None

    def attribute(self, x, target):
        if Counting.stop_at is not None and len(Counting.seen) == Counting.stop_at:
            raise KeyboardInterrupt
        Counting.seen.append(len(x))
        return torch.zeros_like(x)


@pytest.fixture
def counting():
    Counting.seen, Counting.stop_at = [], None
    with METHODS.scoped("counting_test", Counting):
        yield Counting


def test_explain_resumes_after_an_interrupt(tmp_path, counting):
    folder = tmp_path / "in"
    for i in range(5):
        photo(folder / f"{i}.png", 40 * i)
    out = tmp_path / "o"
    args = ["explain", folder, *TINY, "--method", "counting_test", "--out", out,
            "--images-per-batch", "2"]
    counting.stop_at = 2  # Ctrl-C during the third call
    result = run(*args)
    assert result.exit_code == 130 and "interrupted" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["explained"]) == 4 and summary["complete"] is False
    counting.seen, counting.stop_at = [], None
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert counting.seen == [1] and "resuming: 4 image(s)" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["explained"]) == 5 and summary["complete"] is True
    counting.seen = []
    assert run(*args, "--no-resume").exit_code == 0 and counting.seen == [2, 2, 1]
    counting.seen = []
    assert run(*args, "--size", "12").exit_code == 0 and counting.seen == [2, 2, 1]  # changed


# ---------------------------------------------------------------- progress


class Chunky(Explainer):
    """Four model passes per sample, slowly: a progress bar must move between them."""

    def rows_per_sample(self):
        return 4

    def attribute(self, x, target):
        import time

        for _ in range(4):
            time.sleep(0.25)
            with torch.no_grad():
                self.model(x)
        return torch.zeros_like(x)


def test_progress_moves_per_pass_with_an_eta(tmp_path):
    with METHODS.scoped("chunky_test", Chunky):
        result = run("explain", photo(tmp_path / "a.png"), photo(tmp_path / "b.png"), *TINY,
                     "--method", "chunky_test", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert ("chunky_test: 4 forward + 4 backward pass(es) per image (exact, from "
            "rows_per_sample); 2 image(s) → 16 passes (8 forward)") in result.output
    import re

    states = set(re.findall(r"(\d+)%\|[^\r\n]*pass/s", result.output))
    assert {"25", "50", "75"} <= states  # one batch of two images, four steps of it
    assert "<00:0" in result.output  # an ETA


class Undeclared(Chunky):
    """Declares no cost (``Explainer.cost`` returns None)."""

    def cost(self, x_shape, target=None):
        return None


def test_undeclared_cost_is_measured_on_the_first_batch(tmp_path):
    with METHODS.scoped("undeclared_test", Undeclared):
        result = run("explain", photo(tmp_path / "a.png"), photo(tmp_path / "b.png"),
                     photo(tmp_path / "c.png"), *TINY, "--method", "undeclared_test",
                     "--out", tmp_path / "o", "--images-per-batch", "1")
    assert result.exit_code == 0, result.output
    assert "undeclared_test: 4 forward pass(es) per image (measured)" in result.output


def test_bench_counts_passes_per_sample(tmp_path):
    out = tmp_path / "b.json"
    result = run("bench", "--model", "zoo:mnist_allconv", "--methods",
                 "saliency,integrated_gradients", "--images", "2", "--repeats", "1",
                 "--device", "cpu", "--method-option", "integrated_gradients.n_steps=8",
                 "--out", out)
    assert result.exit_code == 0, result.output
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert rows["saliency"]["forward_per_sample"] == 1
    assert rows["saliency"]["backward_per_sample"] == 1  # never below one forward+backward
    assert rows["integrated_gradients"]["backward_per_sample"] == 8
    assert rows["integrated_gradients"]["forward_per_sample"] in (8, 9)  # + target forward
    assert "| saliency |" in result.output and "| 1 | 1 |" in result.output


def test_factory_module_in_the_current_directory_from_the_console_script(tmp_path):
    (tmp_path / "mymodule.py").write_text(
        "import torch\n\ndef factory():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),"
        " torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))\n")
    photo(tmp_path / "a.png")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = Path(sys.executable).parent / "faithmap"
    done = subprocess.run([str(script), "explain", "a.png", "--model", "mymodule:factory",
                           "--size", "16", "--out", "o"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "a.saliency.npy").is_file()


@pytest.mark.parametrize("args", [
    ("explain", "x.png", "--model", "zoo:mnist_allconv", "--batch-size", "0"),
    ("explain", "--no-such-option"),
    ("no-such-command",),
])
def test_usage_errors_are_one_line(args, tmp_path):
    """Bad values and unknown options/commands: the whole output is one 'Error:' line (no
    click usage block), exit status 2."""
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "--help" in lines[0]
