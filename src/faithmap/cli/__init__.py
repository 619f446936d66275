"""The ``faithmap`` command line (entry point ``faithmap.cli:main``).

Modules: :mod:`.main` (the group and ``methods``), :mod:`.explain`, :mod:`.evaluate`
(``evaluate``, ``demo``), :mod:`.bench`, :mod:`.zoo`, :mod:`.comet` (``train-comet``),
:mod:`.ray_explain` (``explain --ray``) and :mod:`.common` (what they share).
"""

from .main import main

__all__ = ["main"]
