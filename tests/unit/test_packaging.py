"""The installed package is the product only: development tooling stays in the repository.

Builds the wheel exactly as ``pip install .`` would (from a copy of the working tree, so the
checkout gets no build/ or egg-info) and reads its file list. ~10 s: pip builds it in an
isolated environment with the setuptools pyproject.toml asks for.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Sample-data generator, name lists, lab plumbing: moved out of the package (issue 9 item 7).
TOOLING = ("generate", "vietnamese_names", "labenv")
# Top-level names that are repository tooling; an installed module importing one would break.
TOOLING_PACKAGES = ("tools", "lab", "labenv", "benchmarks", "scripts", "tests")
# Not part of a build: caches, the venv, lab state, earlier builds.
SKIP = shutil.ignore_patterns(".git", ".venv", ".lab", "build", "dist", "*.egg-info",
                              "__pycache__", ".pytest_cache", ".ruff_cache", ".ansible")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=SKIP, symlinks=True)
    out = tmp / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"pip wheel failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    [built] = out.glob("mailgov-*.whl")
    return zipfile.ZipFile(built)


def names(wheel: zipfile.ZipFile) -> list[str]:
    return wheel.namelist()


def test_wheel_holds_the_product(wheel: zipfile.ZipFile) -> None:
    files = names(wheel)
    # The product is there (a wheel that lost the package would pass the checks below).
    for module in ("cli", "validate", "plan", "live", "dns", "naming"):
        assert f"mailgov/{module}.py" in files, files
    # validate reads the schema: installed, it must be inside the package.
    assert "mailgov/schema/mailboxes.schema.json" in files, files
    [entry_points] = [n for n in files if n.endswith(".dist-info/entry_points.txt")]
    assert "mailgov = mailgov.cli:main" in wheel.read(entry_points).decode()


def test_wheel_has_no_tooling(wheel: zipfile.ZipFile) -> None:
    files = names(wheel)
    top = {n.split("/", 1)[0] for n in files}
    assert {t for t in top if not t.endswith(".dist-info")} == {"mailgov"}, sorted(top)
    modules = {Path(n).stem for n in files if n.endswith(".py")}
    assert not modules & set(TOOLING), sorted(modules & set(TOOLING))


def test_installed_modules_import_no_tooling(wheel: zipfile.ZipFile) -> None:
    # Without the repository beside it, an import of tools/ or lab/ would fail at run time.
    bad = []
    for name in names(wheel):
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(wheel.read(name), name)):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            bad += [f"{name}: {m}" for m in mods
                    if m.split(".")[0] in TOOLING_PACKAGES
                    or any(m == f"mailgov.{t}" for t in TOOLING)]
    assert not bad, bad


def test_installed_package_validates_without_the_checkout(
        wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    # The wheel unpacked alone (first on the path, run outside the repository): what an
    # installed mailgov finds is only what the wheel carries (the schema used to be missing).
    site = tmp_path / "site"
    wheel.extractall(site)
    code = ("import sys, mailgov, mailgov.cli; assert mailgov.__file__.startswith(sys.argv[1]), "
            "mailgov.__file__; sys.exit(mailgov.cli.main(['validate', sys.argv[2]]))")
    data = str(REPO / "data" / "mailboxes.yaml")
    proc = subprocess.run([sys.executable, "-c", code, str(site), data],
                          capture_output=True, text=True, check=False, cwd=tmp_path,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
