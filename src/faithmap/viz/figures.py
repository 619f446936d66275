"""PNG figures for the evaluation report (matplotlib, Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..core.files import atomic_write_bytes
from .heatmap import (
    CONVENTION_TEXT,
    EMPTY,
    NON_NEGATIVE,
    colorbar,
    heatmap,
    sign_convention,
    to_map,
)

LINE_STYLES = ("-", "--", ":", "-.")


def method_styles(n: int) -> list[tuple[tuple[float, float, float], str]]:
    """``n`` distinct (RGB colour, line style) pairs for curves, one per method: up to 10
    the ``tab10`` colours with solid lines; beyond, the 20 ``tab20`` colours (dark shades
    first, then light) with a new line style for every further ten, so even adjacent
    methods differ in colour and more than 10 methods stay distinguishable."""
    from matplotlib import colormaps

    if n <= 10:
        return [(tuple(colormaps["tab10"](i)[:3]), "-") for i in range(n)]
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))  # dark shades, then light ones
    tab20 = colormaps["tab20"]
    return [(tuple(tab20(order[i % 20])[:3]), LINE_STYLES[(i // 10) % len(LINE_STYLES)])
            for i in range(n)]


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def curves_figure(curves: dict[str, dict[str, list[float]]], path: Path, title: str) -> Path:
    """Mean deletion (left) and insertion (right) curves, one line per method, each with its
    own colour and line style (:func:`method_styles`). ``curves[method]`` holds
    ``deletion``, ``insertion`` and ``fractions`` (or ``deletion_fractions`` /
    ``insertion_fractions`` where the two curves have different steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for (method, entry), (color, style) in zip(curves.items(), method_styles(len(curves))):
        for ax, mode in zip(axes, ("deletion", "insertion")):
            ax.plot(entry.get(f"{mode}_fractions", entry["fractions"]), entry[mode],
                    label=method, linewidth=1.6, color=color, linestyle=style)
    for ax, mode, better in zip(axes, ("deletion", "insertion"), ("lower", "higher")):
        ax.set_title(f"{mode} ({better} area is better)")
        ax.set_xlabel("fraction of pixels " + ("removed" if mode == "deletion" else "inserted"))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("target probability")
    axes[1].legend(fontsize=7 if len(curves) > 10 else 8, loc="lower right",
                   ncol=2 if len(curves) > 10 else 1)
    fig.suptitle(title)
    return _save(fig, path)


def heatmap_grid(images: torch.Tensor, maps: dict[str, torch.Tensor], path: Path,
                 title: str, row_labels: list[str] | None = None,
                 notes: dict[str, dict[int, str]] | None = None) -> Path:
    """Rows = samples (labelled with ``row_labels``), columns = the image and each method.

    Each method's column uses one scale for all its maps (signed ``bwr`` where any map has
    both signs, else ``inferno`` for non-negative maps, each map scaled to its own 99th
    percentile of |a|) with a colour bar under the column and the sign convention in the
    column's title. A cell whose map is all zero says so ("all 0"), one with NaN/Inf values
    too ("NaN map", or the count of NaN pixels, drawn green); ``notes[method][row]`` adds a
    note to that cell (e.g. "fell back": the method used its fallback for that sample).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m, a in maps.items() if len(a)]
    rows = min([len(images)] + [len(maps[m]) for m in methods])
    cols = 1 + len(methods)
    fig, axes = plt.subplots(max(rows, 1), cols, figsize=(1.7 * cols, 1.7 * max(rows, 1) + 0.6),
                             squeeze=False)
    notes = notes or {}
    for r in range(rows):
        img = images[r].float().clamp(0, 1)
        axes[r][0].imshow(img.permute(1, 2, 0).squeeze(-1).numpy(),
                          cmap="gray" if img.shape[0] == 1 else None, vmin=0, vmax=1)
        if row_labels is not None and r < len(row_labels):
            axes[r][0].set_ylabel(row_labels[r], fontsize=7)
    for c, method in enumerate(methods, start=1):
        column = maps[method][:rows]
        convention = sign_convention(column)
        signed = convention not in (NON_NEGATIVE, EMPTY)
        for r in range(rows):
            axes[r][c].imshow(heatmap(column[r], signed=signed))
            bad = int((~torch.isfinite(to_map(column[r]))).sum())
            note = (["NaN map"] if bad == column[r].shape[-1] * column[r].shape[-2] else
                    [f"{bad} NaN px"] if bad else
                    [] if bool((column[r] != 0).any()) else ["all 0"])
            if notes.get(method, {}).get(r) and notes[method][r] not in note:
                note.append(notes[method][r])
            if note:
                axes[r][c].text(0.5, 0.5, "\n".join(note), transform=axes[r][c].transAxes,
                                ha="center", va="center", fontsize=7, color="black",
                                bbox={"facecolor": "white", "alpha": 0.8, "pad": 1.5,
                                      "edgecolor": "none"})
        axes[0][c].set_title(f"{method}\n{convention}", fontsize=7)
        if rows:  # under the column, taking the same room from each of its cells
            colorbar(fig, [axes[r][c] for r in range(rows)], signed)
    axes[0][0].set_title("image", fontsize=8)
    for ax in [a for row in axes for a in row]:
        ax.set_xticks([])
        ax.set_yticks([])
    used = dict.fromkeys(sign_convention(maps[m][:rows]) for m in methods)
    fig.suptitle(title + "\n" + "; ".join(CONVENTION_TEXT[u] for u in used), fontsize=9)
    return _save(fig, path)
