"""Write the data files that ship inside faithmap (``faithmap/data/files``) from the
originals in the ``data`` extra: ``python -m faithmap.data._bundle`` (needs
``pip install 'faithmap[data]'``). The tests check that the shipped copies equal the
originals wherever the extra is installed (tests/data/test_shipped.py)."""

from __future__ import annotations

import sys

from ..core.files import atomic_write_bytes
from ._common import FILES, write_packed
from .bundled import SHIPPED_TABLES
from .samples import SAMPLES, SHIPPED_PHOTOS, _package_photo


def main() -> int:
    (FILES / "photos").mkdir(parents=True, exist_ok=True)
    for name, (relative, original) in SHIPPED_TABLES.items():
        write_packed(FILES / relative, original())
        print(f"{name}: {FILES / relative} ({(FILES / relative).stat().st_size} bytes)")
    for name in SHIPPED_PHOTOS:
        package, relative, _ = SAMPLES[name]
        source = _package_photo(package, relative)
        if source is None:
            print(f"{name}: {package} is not installed", file=sys.stderr)
            return 1
        target = FILES / "photos" / source.name
        atomic_write_bytes(target, source.read_bytes())
        print(f"{name}: {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
