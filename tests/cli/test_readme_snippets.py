"""The README's Python snippets run verbatim, in order, in one namespace (issue 19): every
name they use is defined by them or by the files the README says the user has."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_snippets():
    blocks = snippets()
    assert len(blocks) >= 3
    assert any("fm.evaluate(" in b for b in blocks)


@pytest.mark.slow
def test_readme_python_snippets_run_verbatim(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.chdir(tmp_path)
    # the files the README's text says the user has: a fine-tuned state dict and photos
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50(num_classes=3).state_dict(),
               "resnet50-finetuned.pth")
    Path("photos").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(
            f"photos/{i}.jpg")
    namespace: dict = {}
    for i, block in enumerate(snippets()):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102
    assert namespace["attr"].shape == (2, 1, 224, 224)
    assert namespace["maps"].shape == namespace["data"].images.shape
    assert (tmp_path / "eval-out" / "report.html").is_file()
