"""mkdocs hook: pages that include a file kept elsewhere in the repository (one source).

A page line ``<!-- include: benchmarks/RESULTS.md -->`` is replaced by that file, with its
links to ``../docs/…`` rewritten relative to the docs folder (the file's own links are
relative to where it lives).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.MULTILINE)


def _included(match: re.Match) -> str:
    path = ROOT / match.group(1)
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\]\(\.\./docs/", "](", text)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - hook API
    return _INCLUDE.sub(_included, markdown)
