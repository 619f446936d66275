"""docs/guide.md's fm.viz example runs verbatim and its figures are the ones in docs/img/."""

import re
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _block() -> str:
    section = (DOCS / "guide.md").read_text().split("## Plotting attributions", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_guide_viz_example_runs_verbatim(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = _block()
    assert "fm.viz.compare(" in block and "fm.viz.show(" in block
    namespace: dict = {}
    exec(compile(block, "docs/guide.md fm.viz block", "exec"), namespace)  # noqa: S102
    for name in ("viz_compare.png", "viz_show.png"):
        with Image.open(tmp_path / name) as made, Image.open(DOCS / "img" / name) as shown:
            assert made.size == shown.size  # the docs show this snippet's figure
        assert f"](img/{name})" in (DOCS / "guide.md").read_text()
    assert len(namespace["fig"].axes) == 2 * 2 + 1  # 2 photos × (image, map) + colour bar


if __name__ == "__main__":  # regenerate the figures: cd docs/img && python <this file>
    exec(compile(_block(), "docs/guide.md fm.viz block", "exec"), {})  # noqa: S102
