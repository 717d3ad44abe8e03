"""Text in the spreadsheets the project writes (`mailgov export`, the public directory's CSV,
the usage report's CSV) and reads back (`mailgov import`).

A name or a title is free text: the data may hold ``=HYPERLINK(…)`` or ``+1-2`` as a title
(validate has no reason to refuse it), and a spreadsheet that opens the CSV would run it as a
formula (CSV injection: data leaves to anyone who downloads the file). A CSV cell that
starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) is written with a
leading apostrophe, the spreadsheet's own mark for "text"; `mailgov import` drops that mark
again, so an export imports back as it was. XLSX cells are written as text cells (never a
formula) and need no mark.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs."""
    return "'" + value if value.startswith(FORMULA_START) else value


def read_text(value: str) -> str:
    """A cell as :func:`csv_text` wrote it, back to the text (other cells unchanged)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) \
        else value
