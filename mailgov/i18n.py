"""Translations of what mailgov prints for people (reports, published pages): gettext.

Source strings are English; catalogs live in ``mailgov/locale/<lang>/LC_MESSAGES/mailgov.po``
with the compiled ``.mo`` beside them, read here by the standard library (Babel is only the
developers' tool: ``make i18n`` extracts and compiles, tests/unit/test_i18n.py checks that
the committed ``.mo`` is the compiled ``.po`` and that every string in the code has an entry).
"""

from __future__ import annotations

import gettext
from pathlib import Path

DOMAIN = "mailgov"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"  # the regulation's and the users' language


def translator(lang: str = DEFAULT_LANGUAGE) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English: the source strings themselves)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: one of {', '.join(LANGUAGES)}")
    if lang == "en":
        return gettext.NullTranslations()
    # fallback=False: a missing catalog is a packaging bug, not English for Vietnamese readers.
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])
