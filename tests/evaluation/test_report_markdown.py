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
    assert "| b | **0.100 ± 0.010** | — |" in page
    assert "| a | 0.200 ± 0.010 | **0.700** |" in page
    assert page.count("| pending |") == len(CLAIMS)  # no seed-paper method was run
    assert "boom" in page


def test_claim_check_ranks_the_method():
    summary = [
        {"dataset": "g", "method": "srd", "metric": "pointing_game", "mean": 0.9, "ci95": 0.1,
         "higher_is_better": True},
        {"dataset": "g", "method": "saliency", "metric": "pointing_game", "mean": 0.5,
         "ci95": 0.1, "higher_is_better": True},
        {"dataset": "g", "method": "srd", "metric": "energy_pointing_game", "mean": 0.2,
         "ci95": 0.1, "higher_is_better": True},
        {"dataset": "g", "method": "saliency", "metric": "energy_pointing_game", "mean": 0.4,
         "ci95": 0.1, "higher_is_better": True},
    ]
    page = render({"config": {"methods": ["srd", "saliency"]}, "summary": summary,
                   "metrics": {}})
    assert "g pointing_game: 0.900 (rank 1/2); g energy_pointing_game: 0.200 (rank 2/2)" in page
    assert "| partly |" in page and "| not measured yet | pending |" in page


def test_claim_studies_replace_pending_rows_and_add_tables():
    results = {"config": {"methods": ["saliency"]}, "summary": [], "metrics": {}}
    study = {"command": "python benchmarks/claims_x.py --n 4",
             "claims": [{"paper": "NeFLAG (Li et al., IJCAI 2023)", "claim": "c1",
                         "measured": "0.5 vs 0.4", "verdict": "yes"}],
             "tables": "| a | b |\n|---|---|\n| 1 | 2 |"}
    page = render(results, studies=[study])
    assert "| NeFLAG (Li et al., IJCAI 2023) | c1 | 0.5 vs 0.4 | yes | " \
           "`python benchmarks/claims_x.py --n 4` |" in page
    assert not any(line.startswith("| NeFLAG") and "pending" in line
                   for line in page.splitlines())
    assert page.count("| pending |") == len(CLAIMS) - 1
    assert "### `python benchmarks/claims_x.py --n 4`" in page and "| 1 | 2 |" in page
