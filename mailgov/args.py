"""Argument types shared by every command line (argparse ``type=``): one rule per kind of
value, so ``--today``, ``--date`` and ``--until`` read days the same way everywhere."""

from __future__ import annotations

import argparse
import re
from datetime import date

from mailgov.i18n import _

# date.fromisoformat also reads 20260101, 2026-W01-1 and 2026-001 (ISO week and ordinal
# days): a typo there would pass as some other day. Only the form the data uses is read.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def day(text: str) -> date:
    """A day written YYYY-MM-DD, as in the data file."""
    try:
        if _DAY.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(_("{text!r} is not a date YYYY-MM-DD").format(
        text=text))


def count(text: str) -> int:
    """A whole number, 0 or more (at most nine digits)."""
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise argparse.ArgumentTypeError(_("{text!r} is not a whole number 0 or more").format(
            text=text))
    return int(text)
