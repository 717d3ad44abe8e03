"""Translations of what mailgov prints for people: gettext.

Source strings are English; catalogs live in ``mailgov/locale/<lang>/LC_MESSAGES/mailgov.po``
with the compiled ``.mo`` beside them, read here by the standard library (Babel is only the
developers' tool: ``make i18n`` extracts and compiles, tests/unit/test_i18n.py checks that
the committed ``.mo`` is the compiled ``.po`` and that every string in the code has an entry).

Two ways of choosing the language (docs/usage.md, "Languages"):

* reports and published pages (``mailgov report``, ``mailgov publish``) are documents of the
  ministry: Vietnamese unless ``--lang en`` (:data:`DEFAULT_LANGUAGE`, :func:`translator`);
* the command line (help, validate's messages, the plan's Markdown) follows the person at the
  terminal: ``--lang`` when given, else the locale (``LC_ALL``, then ``LC_MESSAGES``, then
  ``LANG``, as POSIX orders them): Vietnamese for ``vi``/``vi_VN…``, English otherwise
  (:func:`cli_language`, :func:`use`, :func:`_`). CI logs without a locale stay English.
  Rule ids, exit codes and JSON keys never change with the language.
"""

from __future__ import annotations

import argparse
import gettext
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DOMAIN = "mailgov"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"  # the regulation's and the users' language (reports, pages)
CLI_DEFAULT_LANGUAGE = "en"  # the command line without a Vietnamese locale


def translator(lang: str = DEFAULT_LANGUAGE) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English: the source strings themselves)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: one of {', '.join(LANGUAGES)}")
    if lang == "en":
        return gettext.NullTranslations()
    # fallback=False: a missing catalog is a packaging bug, not English for Vietnamese readers.
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])


def locale_language(environ: Mapping[str, str] | None = None) -> str:
    """The command line's language from the locale: the first of LC_ALL, LC_MESSAGES, LANG
    that is set decides (POSIX); ``vi`` or ``vi_VN.UTF-8`` → "vi", anything else → "en"."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "vi" if value.split(".")[0].split("_")[0].lower() == "vi" else "en"
    return CLI_DEFAULT_LANGUAGE


def cli_language(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """``--lang X`` / ``--lang=X`` anywhere before ``--`` wins; else the locale. An unknown
    X is left for argparse to refuse (in the locale's language)."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = None
        if arg == "--lang" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--lang="):
            value = arg.split("=", 1)[1]
        if value in LANGUAGES:
            return value
    return locale_language(environ)


_active: gettext.NullTranslations = gettext.NullTranslations()
_active_lang = CLI_DEFAULT_LANGUAGE


def use(lang: str) -> None:
    """Make ``lang`` the language of :func:`_` (the command line's messages) and of
    argparse's own words (usage:, options, error:)."""
    global _active, _active_lang
    _active = translator(lang)
    _active_lang = lang
    # argparse looks its words up through its module's `_` at call time.
    argparse._ = _  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]


def error_line(message: object) -> str:
    """``mailgov: error: MESSAGE`` in the chosen language (the prefix admins grep for stays
    the program's name)."""
    return _("mailgov: error: {message}").format(message=message)


def current() -> str:
    return _active_lang


def _(message: str) -> str:
    """``message`` in the active language of the command line (English by default)."""
    return _active.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _active.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a string for the catalog; translated where it is used (with :func:`_`)."""
    return message


# argparse's own words that mailgov's help and errors show (translated through the catalog).
ARGPARSE_WORDS = (
    N_("usage: "), N_("positional arguments"), N_("options"),
    N_("show this help message and exit"), N_("show program's version number and exit"),
    N_("%(prog)s: error: %(message)s\n"), N_("the following arguments are required: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unrecognized arguments: %s"), N_("expected one argument"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)


# --------------------------------------------------------------------------- help texts


def localise(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Help texts in the active language (mailgov.i18n.use), and `--lang` on every command.

    The texts are written in English where the parsers are made; the catalog has each one
    (tools/i18n.py collects them from this same walk), so a new command's help is covered by
    `make i18n` without marking anything."""
    for p in help_parsers(parser):
        if not any("--lang" in a.option_strings for a in p._actions):
            p.add_argument("--lang", choices=LANGUAGES, dest="cli_lang",
                           help="language of messages and help: vi or en (default: vi when "
                           "the locale is Vietnamese: LC_ALL, LC_MESSAGES or LANG vi_VN…, "
                           "else en)")
        for text, setter in help_texts(p):
            setter(_(text))
    return parser


def help_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every sub-parser under it, each once."""
    out: list[argparse.ArgumentParser] = []
    todo = [parser]
    while todo:
        p = todo.pop(0)
        if any(p is q for q in out):
            continue
        out.append(p)
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                todo += list(a.choices.values())
    return out


def help_texts(p: argparse.ArgumentParser) -> list[tuple[str, Any]]:
    """(English text, setter) of every help text of one parser: its description, its
    arguments' help, its group titles and its sub-commands' one-line help."""
    out: list[tuple[str, Any]] = []
    if p.description:
        out.append((p.description, lambda t, p=p: setattr(p, "description", t)))
    for a in p._actions:
        if a.help and a.help is not argparse.SUPPRESS:
            out.append((a.help, lambda t, a=a: setattr(a, "help", t)))
        if isinstance(a, argparse._SubParsersAction):
            for c in a._choices_actions:
                if c.help:
                    out.append((c.help, lambda t, c=c: setattr(c, "help", t)))
    for g in p._action_groups:
        if g.title and g.title not in ("positional arguments", "options"):
            out.append((g.title, lambda t, g=g: setattr(g, "title", t)))
    return out
