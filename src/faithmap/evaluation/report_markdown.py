"""Generate ``docs/results.md`` from ``faithmap evaluate`` output (never typed by hand).

    python -m faithmap.evaluation.report_markdown demo-out/results.json -o docs/results.md

Each seed paper's claim is a :class:`Claim` whose ``check`` reads the results (summary and
per-sample scores) and returns (what we measured, verdict); the verdict comes from
:func:`faithmap.evaluation.verdicts.claim_verdict` over paired comparisons
(:func:`~faithmap.evaluation.verdicts.compare`), never from a ranking alone; a claim whose
method is not implemented yet says so. Claims
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
from .table import Cell, build_table, flag_summary
from .verdicts import ci_outcome, claim_verdict, compare

Summary = list[dict[str, Any]]
Results = dict[str, Any]


@dataclass(frozen=True)
class Claim:
    paper: str
    claim: str
    methods: tuple[str, ...]
    check: Callable[[Results], tuple[str, str]] | None = None


def _best_on(method: str, metrics: tuple[str, ...]) -> Callable[[Results], tuple[str, str]]:
    """Check: does ``method`` beat the strongest other method (by mean) on each of
    ``metrics`` in every dataset, beyond the spread? One comparison per (dataset, metric):
    paired over samples (:func:`~faithmap.evaluation.verdicts.compare`) when ``results``
    has per-sample scores, else by non-overlapping 95% CIs; the verdict is
    :func:`~faithmap.evaluation.verdicts.claim_verdict` of their outcomes."""

    def check(results: Results) -> tuple[str, str]:
        summary: Summary = results.get("summary", [])
        scores: dict[tuple[str, str, str], dict[int, float]] = {}
        for r in results.get("samples") or ():
            scores.setdefault((r["dataset"], r["method"], r["metric"]), {})[int(r["sample"])] = \
                float(r["score"])
        parts, outcomes = [], []
        for dataset in dict.fromkeys(r["dataset"] for r in summary):
            for metric in metrics:
                rows = [r for r in summary if (r["dataset"], r["metric"]) == (dataset, metric)
                        and math.isfinite(r["mean"]) and r.get("higher_is_better") is not None]
                ours = [r for r in rows if r["method"] == method]
                others = [r for r in rows if r["method"] != method]
                if not ours or not others:
                    continue
                higher = bool(ours[0]["higher_is_better"])
                sign = 1.0 if higher else -1.0
                other = max(others, key=lambda r: sign * r["mean"])
                a = scores.get((dataset, method, metric))
                b = scores.get((dataset, other["method"], metric))
                if a is not None and b is not None:
                    index = sorted(set(a) | set(b))
                    d = compare([a.get(i, math.nan) for i in index],
                                [b.get(i, math.nan) for i in index], higher_is_better=higher)
                    outcome, text = d.outcome, d.text(method, other["method"])
                else:
                    outcome = ci_outcome(ours[0], other)
                    text = (f"{method} {ours[0]['mean']:.3f} ± {ours[0]['ci95']:.3f} vs "
                            f"{other['method']} {other['mean']:.3f} ± {other['ci95']:.3f}: "
                            f"{outcome} (95% CIs)")
                parts.append(f"{dataset} {metric}: {text}")
                outcomes.append(outcome)
        if not outcomes:
            return "not measured", "pending"
        return "; ".join(parts), claim_verdict(outcomes)

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
    methods_run = set(results.get("config", {}).get("methods", []))
    study_rows = [(c, study.get("command", "?")) for study in studies
                  for c in study.get("claims", [])]
    lines = ["| paper | claim | measured | reproduced? | source |", "|---|---|---|---|---|"]
    shown: set[int] = set()
    for paper in dict.fromkeys(c.paper for c in CLAIMS):
        mine = [i for i, (c, _) in enumerate(study_rows) if _same_paper(paper, c["paper"])]
        for claim in (c for c in CLAIMS if c.paper == paper):
            if methods_run & set(claim.methods) and claim.check is not None:
                measured, verdict = claim.check(results)
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
             "over samples; ↑ higher is better, ↓ lower is better (the metric's direction); "
             "**bold** = the best method, marked only where it beats the runner-up beyond "
             "the spread (the line under each heading says how that was tested and which "
             "metrics have no clear best). The target policy says which class each metric "
             "explains: the model's prediction or the dataset's label.", ""]
    flags = results.get("flags", {})
    datasets = config.get("datasets", {})
    for section in build_table(summary, info, results.get("samples"), datasets):
        lines += [f"## {section.dataset}", ""]
        if section.caption():
            lines += [section.caption() + ".", ""]
        flagged = flag_summary(flags.get(section.dataset, {}),
                               datasets.get(section.dataset, {}).get("n"))
        if flagged:
            lines += [flagged + ".", ""]
        lines += [
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
