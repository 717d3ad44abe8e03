"""The gettext catalogs of mailgov/locale: extract, update, compile (Babel; developers only).

    .venv/bin/python tools/i18n.py           # extract the strings, merge into every .po, compile
    .venv/bin/python tools/i18n.py --check   # exit 1 if a .po lacks a string or a .mo is stale

Translate the new entries of ``mailgov/locale/<lang>/LC_MESSAGES/mailgov.po`` (msgstr), run it
again, commit the .po and the .mo. The package reads the .mo with the standard library.
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parent.parent
LOCALE = REPO / "mailgov" / "locale"
# Every module's _("…"), N_("…") and ngettext("…", "…") strings are catalogued (what admins
# and units read: validate's and the planner's messages, the plan's Markdown, reports, pages,
# the command line's own words). Command help is collected from the parsers (help_strings).
SOURCES = tuple(sorted(str(p.relative_to(REPO)) for p in (REPO / "mailgov").glob("*.py")))
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
LANGUAGES = ("vi",)
STAMP = datetime(2026, 12, 7, tzinfo=UTC)


def extract() -> Catalog:
    # A fixed date: re-running must not change the files when no string changed.
    template = Catalog(project="mailgov", domain="mailgov", creation_date=STAMP)
    for rel in SOURCES:
        for _lineno, msg, _comments, _ctx in extract_from_file("python", REPO / rel,
                                                               keywords=KEYWORDS):
            template.add(msg)
    for text in help_strings():
        template.add(text)
    return template


def help_strings() -> list[str]:
    """Every help text of every `mailgov` command, as the parsers hold them in English (the
    walk mailgov.cli.localise translates)."""
    sys.path.insert(0, str(REPO))
    from mailgov import cli, i18n

    i18n.use("en")
    parser = i18n.localise(cli.build_parser())
    return [text for p in i18n.help_parsers(parser) for text, _set in i18n.help_texts(p)]


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / "mailgov.po"


def read(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=lang, project="mailgov", domain="mailgov", creation_date=STAMP)
    with path.open("rb") as f:
        return read_po(f, locale=lang, domain="mailgov")


def compiled(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def problems() -> list[str]:
    """Strings without a translation, and .mo files that are not their .po compiled."""
    out = []
    wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in extract() if m.id}
    for lang in LANGUAGES:
        cat = read(lang)
        have = {m.id if isinstance(m.id, str) else m.id[0] for m in cat
                if m.id and (m.string if isinstance(m.string, str) else all(m.string))}
        out += [f"{po_path(lang)}: no translation for {s!r}" for s in sorted(wanted - have)]
        mo = po_path(lang).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(cat):
            out.append(f"{mo}: not the compiled {po_path(lang).name} (run tools/i18n.py)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    if args.check:
        found = problems()
        for p in found:
            print(p, file=sys.stderr)
        return 1 if found else 0
    template = extract()
    for lang in LANGUAGES:
        cat = read(lang)
        cat.update(template, no_fuzzy_matching=True)
        # Old entries are dropped, not kept as obsolete comments: git has the history.
        cat.obsolete.clear()
        cat.fuzzy = False
        cat.revision_date = STAMP
        po = po_path(lang)
        po.parent.mkdir(parents=True, exist_ok=True)
        with po.open("wb") as f:
            write_po(f, cat, no_location=True, sort_output=True, omit_header=False, width=100)
        po.with_suffix(".mo").write_bytes(compiled(read(lang)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
