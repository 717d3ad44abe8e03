"""The reviewed plan: what `mailgov plan --out plan.json` records and `mailgov apply plan.json`
holds the directory to (issue 16; octoDNS's `--checksum` is the model).

A pull request shows a plan; after approval CI applies. Planning again at apply time could
write something nobody reviewed (the directory changed in between, the data file is another
commit, someone added `--allow-mass-change`). So the plan file records:

* the data file (path, sha256, its git commit when it is in a work tree) and the base of the
  review (path, sha256): the apply refuses another data file;
* the settings that judged the plan (date, guards' overrides, drift removal, scope): the apply
  uses exactly these, never the command line's;
* a digest of the live state that was read (for the record: unrelated live writes, such as
  a login's ``pwdLastSuccess``, do not make a plan stale);
* the changes, and their checksum: a sha256 over their canonical JSON. Under the lock the
  apply plans again and writes only when that plan's checksum is the reviewed one.

Pure: reading and writing the file, digests, comparisons. `mailgov.reconcile` enforces it.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailgov.i18n import _

FORMAT = "mailgov-plan/1"
# What a reviewed plan fixes besides the changes (Settings fields, by name).
SETTINGS = ("today", "allow_mass_change", "remove_drift", "scope", "kinds",
            "today_max_ahead_days")


class ReviewedPlanError(ValueError):
    """A plan file that cannot be used (unreadable, another format, fields missing); one line."""


@dataclass(frozen=True)
class Reviewed:
    data_path: str
    data_sha256: str
    checksum: str
    changes_total: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    base_path: str | None = None
    base_sha256: str | None = None
    commit: str | None = None
    live_sha256: str | None = None
    archived: Mapping[str, str] = field(default_factory=dict)
    source: str = ""  # the plan file, for messages


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def checksum(changes: Sequence[Any]) -> str:
    """sha256 of the changes' canonical JSON (their order is the apply order: it counts)."""
    return hashlib.sha256(canonical([c.to_dict() for c in changes])).hexdigest()


_INCLUDE_LINE = re.compile(rb"^ *- include: *([^\s#'\"]+) *$", re.MULTILINE)


def file_sha256(path: str | Path) -> str:
    """sha256 of the data file; with per-unit files (``- include: PATH``), of it and every file
    it includes, in order, each with its length (the single-file digest is unchanged)."""
    try:
        raw = Path(path).read_bytes()
        if not _INCLUDE_LINE.search(raw):
            return hashlib.sha256(raw).hexdigest()
        h = hashlib.sha256()
        seen: set[Path] = set()

        def feed(p: Path, data: bytes) -> None:
            seen.add(p.resolve())
            h.update(b"%d:" % len(data) + data)
            for m in _INCLUDE_LINE.finditer(data):
                sub = (p.parent / m.group(1).decode("utf-8", "replace")).resolve()
                if sub not in seen and sub.is_file():  # the loader refuses the rest
                    feed(sub, sub.read_bytes())

        feed(Path(path), raw)
        return h.hexdigest()
    except OSError as exc:
        raise ReviewedPlanError(_("cannot read {path}: {error}").format(
            path=path, error=exc.strerror or exc)) from None


def live_sha256(live: Mapping[str, Mapping[str, Sequence[str]]]) -> str:
    """sha256 of a live state read (entries and values sorted)."""
    flat = {dn: {k: sorted(v) for k, v in sorted(attrs.items())}
            for dn, attrs in sorted(live.items())}
    return hashlib.sha256(canonical(flat)).hexdigest()


def git_commit(path: str | Path) -> str | None:
    """The commit of the work tree holding ``path`` ("+dirty" when the file differs from it);
    None outside git, without git, or for a file git does not track."""
    where = Path(path).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        tracked = subprocess.run(["git", "-C", str(where), "ls-files", "--error-unmatch", "--",
                                  str(Path(path).resolve())],
                                 capture_output=True, text=True, timeout=10, check=False)
        if tracked.returncode != 0:  # untracked or ignored (a lab's copy): no commit has it
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--",
                                str(Path(path).resolve())],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def record(*, data_path: str, base_path: str | None, changes: Sequence[Any],
           settings: Mapping[str, Any], live: Mapping[str, Any] | None,
           archived: Mapping[str, str], plan_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The plan file's content (JSON-ready)."""
    return {
        "format": FORMAT,
        "data": {"path": data_path, "sha256": file_sha256(data_path),
                 "commit": git_commit(data_path)},
        "base": ({"path": base_path, "sha256": file_sha256(base_path)} if base_path else None),
        "settings": {k: settings.get(k) for k in SETTINGS},
        "archived": dict(archived),
        "live_sha256": live_sha256(live) if live is not None else None,
        "checksum": checksum(changes),
        "changes_total": len(changes),
        "plan": dict(plan_dict),
    }


def is_plan_file(path: str | Path) -> bool:
    """Whether ``mailgov apply PATH`` was given a plan file rather than a data file (YAML): a
    JSON object naming its format, or a ``*.json`` file that is not JSON at all (a cut or
    broken plan file is reported as not a plan by :func:`load`, never as malformed YAML)."""
    named_json = Path(path).suffix.lower() == ".json"
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
            if head.lstrip().startswith("{") and '"format"' in head:
                return True
            if not named_json:
                return False  # a data file (its loader reports what is wrong with it)
            json.loads(head + fh.read())
    except OSError:
        return False
    except ValueError:  # not JSON, or not UTF-8
        return named_json  # a *.json that is not JSON: a broken plan file
    return False  # valid JSON: a data file written as JSON is the data loader's business


def load(path: str | Path) -> Reviewed:
    """Read a plan file written by `mailgov plan --out`; ReviewedPlanError on anything else."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReviewedPlanError(_("cannot read the plan {path}: {error}").format(
            path=path, error=exc.strerror or exc)) from None
    except ValueError as exc:
        raise ReviewedPlanError(_("{path} is not a plan file (not JSON: {error})").format(
            path=path, error=exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReviewedPlanError(_("{path} is not a plan file of {format} (write one with "
                                  "`mailgov plan --out FILE`)").format(path=path, format=FORMAT))
    try:
        data, base = doc["data"], doc.get("base") or {}
        return Reviewed(
            data_path=str(data["path"]), data_sha256=str(data["sha256"]),
            commit=data.get("commit"), checksum=str(doc["checksum"]),
            changes_total=int(doc["changes_total"]), settings=dict(doc["settings"]),
            base_path=base.get("path"), base_sha256=base.get("sha256"),
            live_sha256=doc.get("live_sha256"), archived=dict(doc.get("archived") or {}),
            source=str(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReviewedPlanError(_("{path}: a plan file with a missing or bad field "
                                  "({error})").format(
            path=path, error=exc)) \
            from None


def inputs_changed(reviewed: Reviewed, data_path: str, base_path: str | None) -> list[str]:
    """Why the files being applied are not the reviewed ones (empty: they are)."""
    out = []
    if file_sha256(data_path) != reviewed.data_sha256:
        out.append(_("the data file {path} is not the one reviewed in {source} (sha256 "
                     "{sha256}…").format(
            path=data_path, source=reviewed.source, sha256=reviewed.data_sha256[:12])
                   + (_(", commit {commit}").format(
                       commit=reviewed.commit) if reviewed.commit else "") + ")")
    if (base_path or None) != (reviewed.base_path or None) or (
            base_path and file_sha256(base_path) != reviewed.base_sha256):
        out.append(_("the base of the review is not the reviewed one ({path})").format(
            path=reviewed.base_path))
    return out


def differences(reviewed: Reviewed, changes: Sequence[Any]) -> str | None:
    """None when ``changes`` are the reviewed ones; else one line saying how they differ."""
    if checksum(changes) == reviewed.checksum:
        return None
    return (_("the plan made now ({count} change(s), checksum {checksum}…) is not the reviewed "
              "plan ({reviewed} change(s), checksum {reviewed_checksum}…): the directory or the "
              "clock moved since the review").format(
        count=len(changes), checksum=checksum(changes)[:12], reviewed=reviewed.changes_total,
        reviewed_checksum=reviewed.checksum[:12]))


def split_markdown(text: str, limit: int = 60000) -> list[str]:
    """Cut a plan's Markdown into parts of at most ``limit`` characters for comments (GitHub
    allows 65,536): at section (``####``) boundaries when it can, each part headed with its
    number and the plan's first line, a `<details>` block cut in two closed and reopened, so
    every part renders on its own."""
    lines = text.rstrip("\n").split("\n")
    if len(text) <= limit:
        return [text]
    title = lines[0]
    parts: list[list[str]] = [[]]
    size = 0
    section: str | None = None  # the #### heading in force
    details: str | None = None  # the open <details><summary> line, if any
    for ln in lines:
        if ln.startswith("#### "):
            section = ln
        if ln.startswith("<details>"):
            details = ln
        elif ln == "</details>":
            details = None
        cost = len(ln) + 1
        if size + cost > limit - 400 and parts[-1]:  # 400: room for the headers added
            if details is not None and ln != "</details>":
                parts[-1] += ["", "</details>"]
            parts.append([])
            head = ["", section + " (continued)"] if section and ln != section else []
            reopen = ["", details, ""] if details is not None and ln != details else []
            parts[-1] += head + reopen
            size = sum(len(x) + 1 for x in parts[-1])
        parts[-1].append(ln)
        size += cost
    n = len(parts)
    out = []
    for i, body in enumerate(parts, 1):
        if i == 1:
            out.append("\n".join(body) + "\n\n" + _("_Part 1 of {n}._").format(n=n) + "\n")
        else:
            out.append("\n".join([_("{title} (part {i} of {n})").format(
                title=title, i=i, n=n), *body]) + "\n")
    return out
