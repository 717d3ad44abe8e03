"""`python -m mailgov` and `python -m mailgov.cli` behave as the `mailgov` command: a user error
raised in another module (dump.py raises mailgov.cli.CliError) is `mailgov: error: …`, never a
traceback (run as `-m mailgov.cli`, the module is `__main__`, a second copy with its own
CliError class)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["mailgov", "mailgov.cli"])
def test_a_user_error_is_a_message_not_a_traceback(module: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", module, "dump", "--data", "data/mailboxes.yaml", "--live-json",
         str(tmp_path / "missing.json"), "-o", str(tmp_path / "out.yaml"), "--lang", "en"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr == (f"mailgov: error: cannot read {tmp_path / 'missing.json'}: No such "
                          "file or directory\n")
    assert run.returncode == 2
    assert not (tmp_path / "out.yaml").exists()


def test_python_m_mailgov_is_the_command() -> None:
    run = subprocess.run([sys.executable, "-m", "mailgov", "--version"], cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("mailgov "), run
