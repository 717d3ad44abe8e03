"""Lab only: the sample data with its dates moved forward to today, so the lab never ages.

    .venv/bin/python lab/lab_data.py [--today YYYY-MM-DD]     write it, print its path
    eval "$(.venv/bin/python lab/lab_data.py --env)"          and export MAILGOV_DATA

`data/mailboxes.yaml` holds fixed dates (created, suspended, cancelled, ...) written for
``ANCHOR``: mailboxes cancelled "last month", a head cancelled "half a year ago". Against the
real calendar those cases drift: a cancelled mailbox inside its retention today is past it in
a few months, and the tests that need one would have none. The lab therefore converges and
tests a copy with every date shifted by (today - ANCHOR) days: the same cases, on any day.
The shift is textual (every YYYY-MM-DD that is a valid date), so the copy keeps the file's
layout, comments and line numbers. tests/unit/test_lab_data.py proves that a copy shifted by
a year plans, as of a year later, exactly what the original plans today.

The copy is `<lab dir>/data/mailboxes.yaml` (lab/labenv.py); CI uses it (.ci/run).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from lab import labenv  # noqa: E402

# The day data/mailboxes.yaml's dates are written for (its cases hold on this day).
ANCHOR = date(2026, 12, 3)
SOURCE = REPO / "data" / "mailboxes.yaml"
_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])")


def shift_text(text: str, days: int) -> str:
    """Every valid ISO date in ``text`` moved by ``days`` (anything else left as it is)."""

    def move(m: re.Match[str]) -> str:
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return m.group(0)
        return (day + timedelta(days=days)).isoformat()

    return _DATE.sub(move, text) if days else text


def write(today: date, lab_dir: Path, source: Path = SOURCE) -> Path:
    out = lab_dir / "data" / "mailboxes.yaml"
    text = shift_text(source.read_text(encoding="utf-8"), (today - ANCHOR).days)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--today", type=date.fromisoformat, default=None)
    ap.add_argument("--env", action="store_true", help="print `export MAILGOV_DATA=...`")
    args = ap.parse_args(argv)
    try:
        lab_dir = labenv.lab_dir(REPO, labenv.lab_id())
    except ValueError as exc:
        print(f"lab_data: {exc}", file=sys.stderr)
        return 2
    path = write(args.today or date.today(), lab_dir)
    print(f"export MAILGOV_DATA={shlex.quote(str(path))}" if args.env else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
