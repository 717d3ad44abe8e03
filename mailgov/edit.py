"""Edits of the data file that reorganise (issue 14): one reviewable change each.

``mailgov domain migrate OLD NEW [--keep-until DATE]``, ``mailgov unit rename ID --abbr NEW``
and ``mailgov unit merge SRC DST`` change the data file the way an admin would by hand, as a
careful text edit: comments, layout and every other line stay as they are (the project reads
YAML with PyYAML/rapidyaml and writes none, so there is no round-trip library to lose
comments with). Each edit is checked before anything is written: the edited text must
validate; otherwise nothing is written and the problems are shown. Positions come from the
loader's locator (the line of a key), so an edit touches exactly the lines it names.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from mailgov.loader import Loaded, LoadError, load
from mailgov.model import Directory, build


class EditError(ValueError):
    """The edit cannot be made (unknown unit, wrong domain, the result would not validate);
    one message, nothing written."""


@dataclass
class Edit:
    """The lines of a data file being edited (line numbers are 1-based, as the locator's)."""

    path: Path
    lines: list[str]
    loaded: Loaded
    directory: Directory

    @classmethod
    def open(cls, path: str | Path) -> Edit:
        p = Path(path)
        try:
            loaded = load(p)
            directory = build(loaded.data)
        except LoadError as exc:
            raise EditError(f"{p}: cannot be read ({exc}); run mailgov validate") from None
        except (KeyError, TypeError) as exc:
            raise EditError(f"{p}: does not validate ({exc}); run mailgov validate") from None
        text = loaded.source.decode("utf-8")
        return cls(p, text.splitlines(keepends=True), loaded, directory)

    def line_of(self, *path: str | int) -> int:
        return self.loaded.locator.locate(tuple(path))[0]

    def set_scalar(self, path: tuple[str | int, ...], key: str, old: str, new: str) -> None:
        """Replace ``key: old`` by ``key: new`` on the line the locator gives for ``path``
        (block or flow style; quotes kept)."""
        n = self.line_of(*path)
        line = self.lines[n - 1]
        pattern = re.compile(rf"(\b{re.escape(key)}:\s*)([\"']?){re.escape(old)}\2(?=[\s,}}#]|$)")
        edited, count = pattern.subn(lambda m: f"{m.group(1)}{m.group(2)}{new}{m.group(2)}",
                                     line, count=1)
        if count != 1:
            raise EditError(f"{self.path}:{n}: cannot find '{key}: {old}' to change; edit it "
                            "by hand")
        self.lines[n - 1] = edited

    def insert_after(self, n: int, new_lines: list[str]) -> None:
        self.lines[n:n] = new_lines

    def text(self) -> str:
        return "".join(self.lines)

    def write(self, *, today: date | None = None, dry_run: bool = False) -> str:
        """Validate the edited text, then replace the file atomically; returns the text.
        A text that does not validate is never written (EditError with the problems)."""
        from mailgov.validate import validate

        text = self.text()
        fd, tmp = tempfile.mkstemp(prefix=".mailgov-edit-", suffix=".yaml",
                                   dir=str(self.path.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            result = validate(tmp, today=today)
            if not result.ok:
                shown = "\n".join(p.format().replace(tmp, str(self.path))
                                  for p in result.problems[:20])
                raise EditError(f"the edited file would not validate; nothing was "
                                f"written:\n{shown}")
            if dry_run:
                return text
            os.chmod(tmp, self.path.stat().st_mode & 0o777)
            os.replace(tmp, self.path)
            tmp = ""
        finally:
            if tmp:
                os.unlink(tmp)
        return text


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def domain_migrate(path: str | Path, old: str, new: str, keep_until: date | None, *,
                   request: str | None = None, today: date | None = None,
                   dry_run: bool = False) -> str:
    """``organization.domain: OLD`` becomes NEW and OLD an alias domain (until
    ``keep_until``, or for ever): every address receives at both, people send and log in
    with the new one. Returns the edited text."""
    e = Edit.open(path)
    org = e.directory.organization
    old_l, new_l = old.strip().lower(), new.strip().lower()
    if org.domain.lower() != old_l:
        raise EditError(f"organization.domain is {org.domain!r}, not {old!r}: migrate from "
                        "the primary domain")
    if old_l == new_l:
        raise EditError("the new domain is the old one")
    if any(a.domain.lower() == new_l for a in org.alias_domains):
        raise EditError(f"{new} is already an alias domain: remove it from "
                        "organization.alias_domains first (its own reviewed change)")
    e.set_scalar(("organization", "domain"), "domain", org.domain, new_l)
    fields = [f"domain: {old_l}"]
    if keep_until is not None:
        fields.append(f"until: {keep_until.isoformat()}")
    if request:
        fields.append(f"request: {request}")
    item = "{ " + ", ".join(fields) + " }"
    domain_line = e.line_of("organization", "domain")
    indent = _indent_of(e.lines[domain_line - 1])
    if org.alias_domains:
        last = e.line_of("organization", "alias_domains", len(org.alias_domains) - 1)
        if not e.lines[last - 1].lstrip().startswith("-"):
            raise EditError(f"{e.path}:{last}: organization.alias_domains is not a block list; "
                            f"add '{item}' by hand")
        item_indent = e.lines[last - 1][: e.lines[last - 1].index("-")]
        e.insert_after(last, [f"{item_indent}- {item}\n"])
    else:
        e.insert_after(domain_line, [f"{indent}alias_domains:  # every address receives here too\n",
                                     f"{indent}  - {item}\n"])
    return e.write(today=today, dry_run=dry_run)
