"""`pip install faithmap` then `faithmap demo` works without the ``data`` extra.

The slow test builds the wheel from a copy of the source, installs it with pip into a fresh
virtualenv that holds only faithmap's declared dependencies (no extras), and runs
``faithmap demo --n 4`` there. Run it with::

    .venv/bin/python -m pytest -q -p no:cacheprovider -m slow tests/packaging

The fresh virtualenv does not download torch (with its CUDA libraries several GB on this
machine's index): it gets a ``.pth`` file naming a folder of symbolic links to exactly the
distributions that faithmap's ``Requires-Dist`` (without extras) pulls in, taken from the
running environment, so pip sees them installed and ``--no-index`` installs only the wheel.
A package faithmap imports but does not declare, or a data file the wheel leaves out, makes
the demo fail there. The default run checks the cheap half: every shipped data file is
matched by a package-data glob of pyproject.toml.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTRA = ("mlxtend", "sklearn", "skimage", "pureml")


def _package_data_globs() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["setuptools"]["package-data"]["faithmap"]


def test_every_shipped_data_file_is_in_the_package_data():
    files = ROOT / "src" / "faithmap" / "data" / "files"
    globs = _package_data_globs()
    shipped = [p.relative_to(ROOT / "src" / "faithmap").as_posix()
               for p in files.rglob("*") if p.is_file()]
    assert any(p.endswith("mnist_5k.npy.xz") for p in shipped)
    missing = [p for p in shipped if not any(fnmatch.fnmatchcase(p, g) for g in globs)]
    assert not missing, f"add package-data globs to pyproject.toml for {missing}"


def _copy_source(dst: Path) -> Path:
    """pyproject, README, LICENSE and src/ (no caches, no egg-info), so the build never
    writes into the working tree."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "src", dst / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    return dst


def _build_wheel(source: Path, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "--quiet", "-w", str(out), str(source)],
                   check=True, capture_output=True, text=True)
    (wheel,) = out.glob("faithmap-*.whl")
    return wheel


def _requirements(requires: list[str] | None,
                  extras: frozenset[str] = frozenset()) -> list[tuple[str, frozenset[str]]]:
    """(name, extras) of the requirements that apply here with ``extras`` requested."""
    from packaging.requirements import Requirement

    out = []
    for line in requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
            out.append((req.name, frozenset(req.extras)))
    return out


def _closure(requirements: list[tuple[str, frozenset[str]]]) -> list[md.Distribution]:
    """The installed distributions that ``requirements`` pull in, with their extras."""
    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        name, extras = todo.pop()
        key = (name.lower().replace("_", "-"), extras)
        if key in done:
            continue
        done.add(key)
        dist = seen.setdefault(key[0], md.distribution(name))
        todo.extend(_requirements(dist.requires, extras))
    return list(seen.values())


def _link_base(dists: list[md.Distribution], base: Path) -> None:
    """A folder of links to the top-level files of ``dists`` (their packages, modules and
    .dist-info), found in the running environment."""
    base.mkdir()
    for dist in dists:
        root = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        tops.add(Path(dist._path).name)  # type: ignore[attr-defined]  # the .dist-info folder
        for top in tops:
            target = root / top
            if top.endswith(".pth") or not target.exists() or (base / top).exists():
                continue
            (base / top).symlink_to(target)


@pytest.mark.slow
def test_wheel_installs_without_extras_and_runs_the_demo(tmp_path):
    (tmp_path / "source").mkdir()
    source = _copy_source(tmp_path / "source")
    wheel = _build_wheel(source, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [line.split(":", 1)[1].strip()
                    for line in archive.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    assert "faithmap/data/files/mnist_5k.npy.xz" in names
    assert "faithmap/data/files/photos/chelsea.png" in names

    _link_base(_closure(_requirements(requires)), tmp_path / "base")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "_faithmap_base.pth").write_text(str(tmp_path / "base") + "\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PIP_")}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
    # --isolated: no pip configuration or index; every dependency must be there already
    install = subprocess.run([sys.executable, "-m", "pip", "--isolated", "--python", str(python),
                              "install", "--no-index", "--no-cache-dir", str(wheel)],
                             capture_output=True, text=True, env=env)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    probe = subprocess.run(
        [str(python), "-c", "import importlib.util, json, faithmap; print(json.dumps("
         f"[faithmap.__file__, [m for m in {EXTRA!r} if importlib.util.find_spec(m)]]))"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path)
    location, extras = json.loads(probe.stdout)
    assert Path(location).is_relative_to(purelib) and extras == []

    out = tmp_path / "demo-out"
    run = subprocess.run([str(venv / "bin" / "faithmap"), "demo", "--n", "4", "--out", str(out)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == [] and results["config"]["n"] == 4
    assert {s["dataset"] for s in results["summary"]} == {"grid", "cluttered"}
