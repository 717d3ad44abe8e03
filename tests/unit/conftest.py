"""The unit tests compare English messages: the command line's language follows the locale
(mailgov.i18n.cli_language), so a developer's Vietnamese locale must not change what they
read. tests/unit/test_i18n.py chooses Vietnamese explicitly (--lang vi, its own env)."""

from __future__ import annotations

import os


def pytest_configure() -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name, "").lower().startswith("vi"):
            os.environ[name] = "C.UTF-8"
