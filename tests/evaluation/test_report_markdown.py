import random

from faithmap.evaluation.report_markdown import CLAIMS, render


def test_render_marks_best_and_lists_claims():
    results = {
        "config": {"model": "zoo:m", "seed": 0, "n": 2, "methods": ["a", "b"]},
        "metrics": {"deletion": {"higher_is_better": False}, "pxap": {"higher_is_better": True}},
        "summary": [
            {"dataset": "grid", "method": "a", "metric": "deletion", "mean": 0.2, "ci95": 0.01,
             "higher_is_better": False},
            {"dataset": "grid", "method": "b", "metric": "deletion", "mean": 0.1, "ci95": 0.01,
             "higher_is_better": False},
            {"dataset": "grid", "method": "a", "metric": "pxap", "mean": 0.7,
             "ci95": float("nan"), "higher_is_better": True},
        ],
        "errors": [{"dataset": "grid", "method": "c", "metric": None, "error": "boom"}],
    }
    page = render(results)
    assert "| method | deletion ↓ | pxap ↑ |" in page
    assert "| b | **0.100 ± 0.010** | — |" in page  # CIs do not overlap
    assert "| a | 0.200 ± 0.010 | 0.700 |" in page  # one method: nothing to be best against
    assert page.count("| pending |") == len(CLAIMS)  # no seed-paper method was run
    assert "boom" in page


def test_claim_check_compares_beyond_the_ci():
    """From a summary alone: SRD beats saliency beyond the CIs on the pointing game, loses
    beyond them on the energy pointing game: "partly" (verdicts.claim_verdict)."""
    summary = [
        {"dataset": "g", "method": "srd", "metric": "pointing_game", "mean": 0.9, "ci95": 0.1,
         "higher_is_better": True},
        {"dataset": "g", "method": "saliency", "metric": "pointing_game", "mean": 0.5,
         "ci95": 0.1, "higher_is_better": True},
        {"dataset": "g", "method": "srd", "metric": "energy_pointing_game", "mean": 0.1,
         "ci95": 0.1, "higher_is_better": True},
        {"dataset": "g", "method": "saliency", "metric": "energy_pointing_game", "mean": 0.4,
         "ci95": 0.1, "higher_is_better": True},
    ]
    page = render({"config": {"methods": ["srd", "saliency"]}, "summary": summary,
                   "metrics": {}})
    assert ("g pointing_game: srd 0.900 ± 0.100 vs saliency 0.500 ± 0.100: holds (95% CIs); "
            "g energy_pointing_game: srd 0.100 ± 0.100 vs saliency 0.400 ± 0.100: fails "
            "(95% CIs)") in page
    assert "| partly |" in page and "| not measured yet | pending |" in page


def _samples(scores):
    return [{"dataset": "g", "method": m, "metric": k, "sample": i, "score": v}
            for (m, k), values in scores.items() for i, v in enumerate(values)]


def _summary(scores):
    from faithmap.evaluation import mean_ci

    return [{"dataset": "g", "method": m, "metric": k, "mean": mean_ci(v)[0],
             "ci95": mean_ci(v)[1], "higher_is_better": True} for (m, k), v in scores.items()]


def test_claim_verdict_from_paired_samples():
    """Per-sample scores: the demo claim is judged by verdicts.compare + claim_verdict; a
    lead within the spread is "inconclusive", never "yes"."""
    rnd = random.Random(0)
    noise = [rnd.random() for _ in range(40)]
    scores = {("srd", "pointing_game"): [rnd.random() for _ in range(40)],
              ("saliency", "pointing_game"): [rnd.random() for _ in range(40)],
              ("srd", "energy_pointing_game"): [v + 0.5 for v in noise],
              ("saliency", "energy_pointing_game"): noise}

    def srd_row(scores):
        results = {"config": {"methods": ["srd", "saliency"]}, "summary": _summary(scores),
                   "samples": _samples(scores), "metrics": {}}
        return next(line for line in render(results).splitlines()
                    if line.startswith("| SRD") and "localisation" in line)

    row = srd_row(scores)
    assert "g pointing_game: srd " in row and "g energy_pointing_game: srd " in row
    parts = dict(p.split(": ", 1) for p in row.split(" | ")[2].split("; "))
    assert parts["g pointing_game"].endswith(": inconclusive")
    assert parts["g energy_pointing_game"].endswith(": holds")
    assert row.endswith("| partly | demo run |")
    scores[("srd", "energy_pointing_game")] = [v + 0.5 * (-1) ** i for i, v in enumerate(noise)]
    assert srd_row(scores).endswith("| inconclusive | demo run |")
