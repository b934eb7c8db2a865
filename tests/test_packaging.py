"""The distribution: each top-level folder ships as a sub-package of ``tapereader``."""

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

import tapereader

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = {
    "tapereader": "tapereader",
    "tapereader.core": "core",
    "tapereader.actors": "actors",
    "tapereader.strategies": "strategies",
    "tapereader.ingest": "ingest",
    "tapereader.replay": "replay",
}


def all_packages() -> list[str]:
    """Every package in the source tree, by its installed dotted name."""
    found = []
    for name, folder in SUBPACKAGES.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            found.append(".".join([name, *rel.parts]))
    return found


def test_the_editable_install_maps_folders_to_subpackages() -> None:
    import importlib

    for name in all_packages():
        module = importlib.import_module(name)
        top = name if name == "tapereader" else ".".join(name.split(".")[:2])
        folder = SUBPACKAGES[top]
        assert Path(module.__file__).is_relative_to(ROOT / folder), name
    assert Path(tapereader.__file__).parent == ROOT / "tapereader"


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_imports_everything(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("tapereader-*.whl")

    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    fresh_python = fresh / "bin" / "python"
    fresh_site = Path(
        subprocess.check_output(
            [fresh_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    # Third-party dependencies come from the project's venv, appended after the fresh
    # site-packages; the editable finder of that venv is not activated this way.
    (fresh_site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(fresh_site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    packages = all_packages()
    code = (
        "import importlib, sys\n"
        f"for name in {packages!r}:\n"
        "    m = importlib.import_module(name)\n"
        f"    assert m.__file__.startswith({str(fresh_site)!r}), (name, m.__file__)\n"
        "print('ok', len(sys.argv))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [fresh_python, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    cli = subprocess.run(
        [fresh_python, "-m", "tapereader.cli", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert cli.returncode == 0 and "events" in cli.stdout, cli.stderr
