"""The docs site (issue 20): mkdocs-material + mkdocstrings, built offline with --strict;
docs/presets.md is generated from faithmap.core.presets; every method and metric page is in
the navigation; benchmarks/RESULTS.md is included from its one source."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nav_files() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = text[text.index("\nnav:"):]
    return set(re.findall(r"([\w/.-]+\.md)\s*$", nav, re.MULTILINE))


def test_presets_page_matches_the_presets_module():
    from faithmap.core.presets import presets_markdown

    page = (ROOT / "docs" / "presets.md").read_text()
    assert page == presets_markdown(), (
        "docs/presets.md is stale: python -m faithmap.core.presets > docs/presets.md")


def test_every_method_and_metric_page_is_in_the_nav():
    nav = _nav_files()
    for folder in ("methods", "metrics"):
        for page in sorted((ROOT / "docs" / folder).glob("*.md")):
            if page.name.lower() in ("readme.md", "index.md"):
                continue  # the folder's index page, reached from its links
            assert f"{folder}/{page.name}" in nav, f"docs/{folder}/{page.name} not in mkdocs.yml"
    assert all((ROOT / "docs" / f).is_file() for f in nav), "nav names a missing page"


def test_site_builds_offline():
    """No web fonts, no plugin that fetches at build time (social cards, privacy)."""
    text = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^\s+font: false$", text, re.MULTILINE)
    plugins = text[text.index("\nplugins:"):text.index("\nmarkdown_extensions:")]
    for fetching in ("social", "privacy", "optimize", "git-revision", "rss"):
        assert fetching not in plugins


def test_benchmarks_page_includes_results_from_its_one_source():
    sys.path.insert(0, str(ROOT))
    try:
        import docs_hooks
    finally:
        sys.path.remove(str(ROOT))
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "<!-- include: benchmarks/RESULTS.md -->" in page
    out = docs_hooks.on_page_markdown(page, None, None, None)
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert out.startswith(results.splitlines()[0]) and len(out) >= len(results) - 100
    assert "](../docs/" not in out  # its links to the docs now resolve inside the site


@pytest.mark.slow  # 10–16 s on 2 busy cores; CI builds the site with `make docs`
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                          "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "presets.html", "benchmarks.html", "methods/dance.html",
                 "metrics/faithfulness.html", "api/methods.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "methods.html").read_text()
    assert 'id="faithmap.methods.dance.DANCE"' in api  # mkdocstrings rendered the classes
    assert "fonts.googleapis" not in (site / "index.html").read_text()
