"""The evaluation's progress log: finished blocks appended to disk as they arrive.

``out/progress/log.jsonl`` starts with a header (a fingerprint of the model, the data and
every option that changes a score) and holds one line per finished block (its scores and
errors); kept attribution maps (for the report's figures) go beside it as ``maps-K.pt``.
A run killed part-way loses at most the blocks in flight: ``resume=True`` reads the log back
and runs only the samples it lacks. A torn last line (killed while writing) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .blocks import BlockResult

LOG_DIR = "progress"


def fingerprint(config: dict[str, Any], model: nn.Module,
                tensors: list[torch.Tensor | None]) -> str:
    """SHA-256 over the options (JSON), the model's state and the data tensors."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for key, value in model.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for t in tensors:
        if t is not None:
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class ProgressLog:
    """Append-only record of finished blocks under ``out/progress/``."""

    def __init__(self, out: Path, key: str, resume: bool) -> None:
        self.dir = Path(out) / LOG_DIR
        self.path = self.dir / "log.jsonl"
        self.done: list[BlockResult] = []
        if resume and self.path.exists():
            self._load(key)
        else:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(parents=True)
            self._write_line({"fingerprint": key})

    def _load(self, key: str) -> None:
        lines = self.path.read_text().splitlines()
        header = json.loads(lines[0]) if lines else {}
        if header.get("fingerprint") != key:
            raise ValueError(f"cannot resume from {self.path}: the model, the data or an option "
                             "that changes scores differs from that run (run without resume)")
        kept = [header]
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a torn last line: that block is run again
                continue
            maps = None
            if entry.get("maps"):
                try:
                    maps = torch.load(self.dir / entry["maps"], weights_only=True)
                except (OSError, RuntimeError, EOFError):  # torn file: run the block again
                    continue
            self.done.append(BlockResult(
                entry["dataset"], entry["method"], entry["samples"],
                [tuple(r) for r in entry["rows"]], entry["errors"], entry["explain_s"],
                entry["metrics_s"], maps, entry.get("map_samples", []),
                entry.get("warnings", []), entry.get("flags", {}), entry.get("curves", {}),
                entry.get("metric_s", {}), entry.get("curves_s", 0.0)))
            kept.append(entry)
        self._rewrite(kept)  # without torn lines, so later appends start on a clean line

    def finished(self, dataset: str, method: str) -> set[int]:
        """Samples of (dataset, method) already finished (scored or failed)."""
        return {s for r in self.done if (r.dataset, r.method) == (dataset, method)
                for s in r.samples}

    def append(self, r: BlockResult) -> None:
        """Record one finished block (flushed and synced before returning)."""
        name = None
        if r.maps is not None:
            name = f"maps-{uuid.uuid4().hex[:16]}.pt"
            tmp = self.dir / f"{name}.tmp"
            torch.save(r.maps, tmp)
            os.replace(tmp, self.dir / name)
        self._write_line({"dataset": r.dataset, "method": r.method, "samples": r.samples,
                          "rows": r.rows, "errors": r.errors, "explain_s": r.explain_s,
                          "metrics_s": r.metrics_s, "maps": name, "map_samples": r.map_samples,
                          "warnings": r.warnings, "flags": r.flags, "curves": r.curves,
                          "metric_s": r.metric_s, "curves_s": r.curves_s})

    def _write_line(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, allow_nan=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _rewrite(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e, allow_nan=True) + "\n" for e in entries))
        os.replace(tmp, self.path)
