"""PNG figures for the evaluation report (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..core.files import atomic_write_bytes
from .heatmap import heatmap


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def curves_figure(curves: dict[str, dict[str, list[float]]], path: Path, title: str) -> Path:
    """Mean deletion (left) and insertion (right) curves, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for method, entry in curves.items():
        for ax, mode in zip(axes, ("deletion", "insertion")):
            ax.plot(entry["fractions"], entry[mode], label=method, linewidth=1.6)
    for ax, mode, better in zip(axes, ("deletion", "insertion"), ("lower", "higher")):
        ax.set_title(f"{mode} ({better} area is better)")
        ax.set_xlabel("fraction of pixels " + ("removed" if mode == "deletion" else "inserted"))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("target probability")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    return _save(fig, path)


def heatmap_grid(images: torch.Tensor, maps: dict[str, torch.Tensor], path: Path,
                 title: str, row_labels: list[str] | None = None) -> Path:
    """Rows = samples (labelled with ``row_labels``), columns = the image and each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m, a in maps.items() if len(a)]
    rows = min([len(images)] + [len(maps[m]) for m in methods])
    cols = 1 + len(methods)
    fig, axes = plt.subplots(max(rows, 1), cols, figsize=(1.6 * cols, 1.6 * max(rows, 1)),
                             squeeze=False)
    for r in range(rows):
        img = images[r].float().clamp(0, 1)
        axes[r][0].imshow(img.permute(1, 2, 0).squeeze(-1).numpy(),
                          cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
        if row_labels is not None and r < len(row_labels):
            axes[r][0].set_ylabel(row_labels[r], fontsize=8)
        for c, method in enumerate(methods, start=1):
            axes[r][c].imshow(heatmap(maps[method][r]))
            if r == 0:
                axes[r][c].set_title(method, fontsize=8)
    axes[0][0].set_title("image", fontsize=8)
    for ax in [a for row in axes for a in row]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
