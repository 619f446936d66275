"""``python -m faithmap.cli``."""

from .main import main

main()
