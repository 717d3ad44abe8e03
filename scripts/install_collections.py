#!/usr/bin/env python3
"""Install the pinned Ansible collections into the venv (collections_path in ansible.cfg).

Usage: install_collections.py VENV. The pins live in pyproject.toml ([tool.mailgov.collections]).

Galaxy is not reachable from the project's machines, PyPI is: PyPI's ``ansible`` package ships
every community collection inside one wheel. That wheel is downloaded by exact version and
sha256 (pip --require-hashes, the machine's own pip configuration), and only the pinned
collection is extracted from it; the ``ansible`` package itself is never installed (it would
bring a second ansible-core). A collection whose MANIFEST already names the pinned version is
left alone, so a second bootstrap downloads nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class InstallError(Exception):
    """One line for the user."""


def pins(pyproject: Path) -> dict[str, dict[str, str]]:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InstallError(f"cannot read {pyproject}: {exc}") from None
    table = data.get("tool", {}).get("mailgov", {}).get("collections", {})
    for name, pin in table.items():
        missing = {"version", "wheel", "sha256"} - set(pin)
        if missing or name.count(".") != 1:
            raise InstallError(f"{pyproject}: [tool.mailgov.collections] {name!r} needs a "
                               f"namespace.name and version, wheel, sha256 ({sorted(missing)})")
    return table


def installed_version(root: Path, name: str) -> str | None:
    manifest = root.joinpath("ansible_collections", *name.split("."), "MANIFEST.json")
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"])
    except (OSError, ValueError, KeyError):
        return None


def install(python: str, root: Path, name: str, pin: dict[str, str]) -> bool:
    """Extract `name` from the pinned wheel into root; False when it was there already."""
    if installed_version(root, name) == pin["version"]:
        return False
    prefix = "ansible_collections/" + name.replace(".", "/") + "/"
    with tempfile.TemporaryDirectory(prefix="mailgov-collections-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{pin['wheel']} --hash=sha256:{pin['sha256']}\n", encoding="utf-8")
        run = subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps",
                              "--require-hashes", "--only-binary=:all:", "-r", str(req),
                              "-d", tmp], capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if run.returncode != 0 or not wheels:
            raise InstallError(f"cannot download {pin['wheel']} for {name}: "
                               f"{run.stderr.strip().splitlines()[-1:] or run.returncode}")
        dest = root.joinpath("ansible_collections", *name.split("."))
        shutil.rmtree(dest, ignore_errors=True)  # an older version: no stale files stay
        with zipfile.ZipFile(wheels[0]) as wheel:
            members = [m for m in wheel.namelist() if m.startswith(prefix)]
            if not members:
                raise InstallError(f"{pin['wheel']} holds no {name}")
            for member in members:
                wheel.extract(member, root)
    got = installed_version(root, name)
    if got != pin["version"]:
        raise InstallError(f"{pin['wheel']} holds {name} {got}, the pin says {pin['version']}")
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: install_collections.py VENV", file=sys.stderr)
        return 2
    venv = Path(argv[0])
    python = str(venv / "bin" / "python")
    root = venv / "collections"
    try:
        for name, pin in pins(REPO / "pyproject.toml").items():
            if install(python, root, name, pin):
                print(f"installed {name} {pin['version']} (from {pin['wheel']})")
    except InstallError as exc:
        print(f"install_collections: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
