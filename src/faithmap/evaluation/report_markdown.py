"""Generate ``docs/results.md`` from ``faithmap evaluate`` output (never typed by hand).

    python -m faithmap.evaluation.report_markdown demo-out/results.json -o docs/results.md

Each seed paper's claim is a :class:`Claim` whose ``check`` reads the summary and returns
(what we measured, verdict); a claim whose method is not implemented yet says so. Claims
that need their own experiment come from ``docs/claims/*.json`` (``--claims``), each
written by a ``benchmarks/claims_<method>.py`` script: ``{"command", "claims": [{"paper",
"claim", "measured", "verdict"}], "tables"}``; their verdicts are computed by the script.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_bytes
from .table import Cell, build_table

Summary = list[dict[str, Any]]


@dataclass(frozen=True)
class Claim:
    paper: str
    claim: str
    methods: tuple[str, ...]
    check: Callable[[Summary], tuple[str, str]] | None = None


def _best_on(method: str, metrics: tuple[str, ...]) -> Callable[[Summary], tuple[str, str]]:
    """Check: is ``method`` the best method on each of ``metrics`` in every dataset?"""

    def check(summary: Summary) -> tuple[str, str]:
        parts, wins, total = [], 0, 0
        for dataset in dict.fromkeys(r["dataset"] for r in summary):
            for metric in metrics:
                rows = [r for r in summary if (r["dataset"], r["metric"]) == (dataset, metric)
                        and math.isfinite(r["mean"])]
                ours = [r for r in rows if r["method"] == method]
                if not ours:
                    continue
                sign = 1 if ours[0]["higher_is_better"] else -1
                rank = 1 + sum(sign * r["mean"] > sign * ours[0]["mean"] for r in rows)
                parts.append(f"{dataset} {metric}: {ours[0]['mean']:.3f} (rank {rank}/{len(rows)})")
                wins, total = wins + (rank == 1), total + 1
        if total == 0:
            return "not measured", "pending"
        verdict = "yes" if wins == total else ("partly" if wins else "no")
        return "; ".join(parts), verdict

    return check


CLAIMS = (
    Claim("SRD (Han et al., ICLR 2024)", "best localisation (pointing game, energy pointing "
          "game) among gradient, LRP-style and CAM baselines (here: every method of the demo "
          "run, LRP = Zennit EpsilonPlusFlat)", ("srd",),
          _best_on("srd", ("pointing_game", "energy_pointing_game"))),
    Claim("SRD (Han et al., ICLR 2024)", "most robust to targeted explanation manipulation",
          ("srd",)),
    Claim("Boundary attributions (Wang et al., ICML 2022)", "BIG is more concentrated than IG "
          "and less sensitive to the baseline choice", ("big", "bsm")),
    Claim("DANCE (Lu et al., ICML 2021)", "decoy versions of Saliency, SmoothGrad and IG have "
          "better fidelity (SF) and lower sensitivity than their base methods", ("dance",)),
    Claim("NeFLAG (Li et al., IJCAI 2023)", "NeFLAG beats IG and SmoothGrad on the insertion − "
          "deletion difference AUC", ("neflag",)),
    Claim("COMET (Zhang et al., ECCV 2024)", "higher localisation (PxAP, energy pointing game) "
          "than post-hoc maps and selector–predictor baselines", ("comet",)),
)


def _md_cell(cell: Cell | None) -> str:
    """``mean ± ci`` (or ``mean``), **bold** on the best method, ``—`` where none."""
    if cell is None:
        return "—"
    text = f"{cell.mean:.3f} ± {cell.ci95:.3f}" if cell.has_ci else f"{cell.mean:.3f}"
    return f"**{text}**" if cell.best else text


def _paper_key(paper: str) -> str:
    """A seed paper's short name: the first word of its :data:`CLAIMS` entry (SRD, DANCE...)."""
    return paper.split()[0].lower() if paper.split() else ""


def _same_paper(static: str, study: str) -> bool:
    return bool(_paper_key(static)) and _paper_key(static) in study.lower()


def _claim_rows(results: dict[str, Any], studies: list[dict[str, Any]]) -> list[str]:
    """The paper-claims table, grouped by paper: demo-run checks, then the studies' rows; a
    claim neither checked on the demo run nor measured by a study is listed as pending."""
    summary: Summary = results["summary"]
    methods_run = set(results.get("config", {}).get("methods", []))
    study_rows = [(c, study.get("command", "?")) for study in studies
                  for c in study.get("claims", [])]
    lines = ["| paper | claim | measured | reproduced? | source |", "|---|---|---|---|---|"]
    shown: set[int] = set()
    for paper in dict.fromkeys(c.paper for c in CLAIMS):
        mine = [i for i, (c, _) in enumerate(study_rows) if _same_paper(paper, c["paper"])]
        for claim in (c for c in CLAIMS if c.paper == paper):
            if methods_run & set(claim.methods) and claim.check is not None:
                measured, verdict = claim.check(summary)
            elif mine:
                continue
            elif not methods_run & set(claim.methods):
                measured, verdict = "method not implemented yet", "pending"
            else:
                measured, verdict = "not measured yet", "pending"
            lines.append(f"| {claim.paper} | {claim.claim} | {measured} | {verdict} | "
                         "demo run |")
        shown.update(mine)
        lines += [_study_row(*study_rows[i]) for i in mine]
    lines += [_study_row(*r) for i, r in enumerate(study_rows) if i not in shown]
    return lines


def _study_row(c: dict[str, Any], command: str) -> str:
    return f"| {c['paper']} | {c['claim']} | {c['measured']} | {c['verdict']} | `{command}` |"


def render(results: dict[str, Any], source: str = "results.json",
           studies: list[dict[str, Any]] | None = None) -> str:
    """The markdown page for one evaluation's ``results.json`` and the claim studies."""
    studies = studies or []
    summary: Summary = results["summary"]
    info = results.get("metrics", {})
    config = results.get("config", {})
    lines = ["# Results", "",
             f"Generated by `python -m faithmap.evaluation.report_markdown {source}` from a "
             f"`faithmap evaluate` run (model `{config.get('model')}`, seed "
             f"{config.get('seed')}, {config.get('n')} samples per dataset). Mean ± 95% CI "
             "over samples; ↑ higher is better, ↓ lower is better; **bold** = best method.", ""]
    for section in build_table(summary, info):
        lines += [f"## {section.dataset}", "",
                  "| method | " + " | ".join(f"{c.metric} {c.arrow}" for c in section.columns)
                  + " |",
                  "|---" * (len(section.columns) + 1) + "|"]
        lines += [f"| {method} | " + " | ".join(_md_cell(c) for c in cells) + " |"
                  for method, cells in section.rows]
        lines.append("")
    lines += ["## Paper claims", ""] + _claim_rows(results, studies)
    for study in studies:
        if study.get("tables"):
            lines += ["", f"### `{study.get('command', '?')}`", "", study["tables"].rstrip()]
    errors = results.get("errors", [])
    if errors:
        lines += ["", "## Failures in this run", ""]
        lines += [f"- `{e['dataset']}/{e['method']}/{e.get('metric') or '-'}`: {e['error']}"
                  for e in errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="results.json from faithmap evaluate")
    parser.add_argument("--claims", type=Path, nargs="*", default=None,
                        help="claim studies (default: docs/claims/*.json when present)")
    parser.add_argument("-o", "--output", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = sorted(Path("docs/claims").glob("*.json")) if args.claims is None else args.claims
    studies = [json.loads(p.read_text()) for p in paths]
    text = render(json.loads(args.results.read_text()), str(args.results), studies)
    if args.output is None:
        print(text)
    else:
        atomic_write_bytes(args.output, text.encode())


if __name__ == "__main__":
    main()
