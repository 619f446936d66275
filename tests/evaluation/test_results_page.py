from faithmap.evaluation.results_page import CLAIMS, render


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
    assert page.count("| pending |") == len(CLAIMS)
    assert "boom" in page
