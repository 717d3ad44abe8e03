"""The unit tests compare English messages: the command line's language follows the locale
(mailgov.i18n.cli_language), so a developer's Vietnamese locale must not change what they
read. tests/unit/test_i18n.py chooses Vietnamese explicitly (--lang vi, its own env)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "mailboxes.yaml"


def pytest_configure() -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name, "").lower().startswith("vi"):
            os.environ[name] = "C.UTF-8"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A copy of the sample data file, for tests that edit it (a module may define its own)."""
    path = tmp_path / "mailboxes.yaml"
    shutil.copy(SAMPLE, path)
    return path
