"""`mailgov codeowners`: who must approve which data file, for the git hosting platform.

Units name their approvers (git users or groups) in the data, the IT department its own in
``policy.approvers``; this module writes the CODEOWNERS file that makes GitHub and GitLab ask
them (docs/data-format.md, "Per-unit files, approvers and CODEOWNERS"):

* ``*`` -> the IT department: the policy, the main data file, the schema, the roles, this
  very file: everything no unit owns;
* each per-unit file (``data/units/<id>.yaml``, mailgov/include.py) -> that unit's approvers,
  or its parent's when it names none (a sub-unit under its department), else the IT line.

The last matching line wins on both platforms, so the unit lines come after ``*``. The file is
written at the repository root by default: the one place both platforms read (GitHub also
reads .github/ and docs/, GitLab docs/ and .gitlab/); ``--out`` chooses another.

``mailgov validate`` checks it (:func:`check`): when the data names approvers, a CODEOWNERS
must exist (MG501) and be exactly what this module writes (MG502); a unit with approvers must
have its records in its own file (MG503), and unit approvers need ``policy.approvers``
(MG504), or whoever edits the main file could change who approves. A generated file left
behind after the approvers were removed from the data is stale too (MG502); a hand-written
CODEOWNERS in a repository whose data names no approvers is left alone. The edit commands
keep a generated file current with :func:`render` and :func:`write` (``Edit.write`` in
mailgov/edit.py), so an edit's pull request already routes a new unit file to its approvers.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailgov.i18n import _
from mailgov.loader import Locator
from mailgov.model import Directory, Unit
from mailgov.problems import Problem
from mailgov.validate import Result

#: Where the platforms read CODEOWNERS, relative to the repository root (GitHub's order,
#: then GitLab's extra place). The first one that exists is the one checked and rewritten.
PLACES = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")
DEFAULT_PLACE = "CODEOWNERS"
MARK = "# Made by `mailgov codeowners`"


def repo_root(data_path: str | Path) -> Path:
    """The nearest directory above the data file holding ``.git``; without one, the
    directory above the data file's own (data/mailboxes.yaml -> .)."""
    here = Path(os.path.abspath(data_path)).parent
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return here.parent


def shown(path: Path) -> str:
    """``path`` as messages show it: relative to the working directory when below it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def find(root: Path) -> Path | None:
    for place in PLACES:
        if (root / place).is_file():
            return root / place
    return None


def _effective(unit: Unit, by_id: dict[str, Unit]) -> tuple[str, ...]:
    seen = set()
    u: Unit | None = unit
    while u is not None and u.id not in seen:
        if u.approvers:
            return u.approvers
        seen.add(u.id)
        u = by_id.get(u.parent) if u.parent else None
    return ()


def unit_files(result: Result) -> dict[str, set[str]]:
    """Per-unit file path (as read) -> the units whose records it holds."""
    out: dict[str, set[str]] = {}
    d = result.directory
    if result.loaded is None or result.loaded.parts is None or d is None:
        return out
    runs = result.loaded.parts.runs
    for n, run in enumerate(runs):
        if run.loaded is result.loaded:
            continue
        end = runs[n + 1].start if n + 1 < len(runs) else len(d.mailboxes)
        out.setdefault(run.loaded.path, set()).update(
            m.unit for m in d.mailboxes[run.start:end])
    for f in result.loaded.parts.files:  # a file with no records of its own (includes only)
        out.setdefault(f.path, set())
    return out


def _names(owners: tuple[str, ...]) -> str:
    return " ".join(f"@{o}" for o in owners)


def _repo_path(path: str, root: Path) -> str:
    rel = os.path.relpath(os.path.abspath(path), root).replace(os.sep, "/")
    return "/" + rel.replace(" ", "\\ ")


def render(result: Result, root: Path) -> str:
    """The CODEOWNERS text for valid data (``result.ok``)."""
    d = result.directory
    assert d is not None
    by_id = {u.id: u for u in d.units}
    data_rel = _repo_path(result.path, root).lstrip("/")
    lines = [
        f"{MARK} from {data_rel}; do not edit: change the approvers",
        "# in the data and run it again (`mailgov validate` fails with MG502 when this file is",
        "# stale). The last matching line wins: the IT department owns everything, each unit's",
        "# approvers own that unit's own file (docs/data-format.md, \"Per-unit files,",
        "# approvers and CODEOWNERS\").",
    ]
    if d.policy.approvers:
        lines.append(f"* {_names(d.policy.approvers)}")
    for path, units in sorted(unit_files(result).items(), key=lambda kv: kv[0]):
        if len(units) != 1:
            continue  # several units (or none) in one file: the IT department's
        owners = _effective(by_id[next(iter(units))], by_id) if next(iter(units)) in by_id \
            else ()
        if owners:
            lines.append(f"{_repo_path(path, root)} {_names(owners)}")
    return "\n".join(lines) + "\n"


def _where(result: Result, path: tuple[str | int, ...]) -> tuple[str, int, int]:
    if result.loaded is not None:
        return result.loaded.where(path)
    if result.source is None:
        return result.path, 0, 0
    line, col = Locator(result.source).locate(path)
    return result.path, line, col


def _problem(result: Result, rule: str, message: str,
             path: tuple[str | int, ...]) -> Problem:
    file, line, col = _where(result, path)
    return Problem(rule, message, path, line, col, file)


def declared(d: Directory) -> bool:
    return bool(d.policy.approvers) or any(u.approvers for u in d.units)


def check(result: Result, root: Path | None = None) -> list[Problem]:
    """The repository checks of `mailgov validate` for valid data (MG501-MG504)."""
    d = result.directory
    if d is None:
        return []
    root = root or repo_root(result.path)
    problems: list[Problem] = []
    own_file = {u for units in unit_files(result).values() if len(units) == 1 for u in units}
    for u in d.units:
        if u.approvers and u.id not in own_file:
            problems.append(_problem(
                result, "MG503", _("unit {id!r} names approvers but its records are not in a "
                                   "file of their own, so CODEOWNERS cannot ask them; `mailgov "
                                   "split` puts them in units/{id}.yaml").format(
                    id=u.id), ("units", u.index, "approvers")))
    if any(u.approvers for u in d.units) and not d.policy.approvers:
        first = next(u for u in d.units if u.approvers)
        problems.append(_problem(
            result, "MG504", _("units name approvers but policy.approvers (the IT department) "
                               "is missing: anyone could then change the main file, and with it "
                               "who approves"), ("units", first.index, "approvers")))
    found = find(root)
    if not declared(d):
        if found is not None and found.read_text(encoding="utf-8",
                                                 errors="replace").startswith(MARK):
            problems.append(Problem(
                "MG502", _("CODEOWNERS was made by `mailgov codeowners` but the data names no "
                           "approvers any more; delete it or run `mailgov codeowners` "
                           "again"), (), 1, 1,
                shown(found)))
        return problems
    if found is None:
        problems.append(_problem(
            result, "MG501", _("the data names approvers but the repository has no CODEOWNERS "
                               "(looked in {places} under {root}); run `mailgov "
                               "codeowners`").format(
                places=', '.join(PLACES), root=root),
            ("policy", "approvers") if d.policy.approvers else ("units",)))
        return problems
    want = render(result, root).splitlines()
    have = found.read_text(encoding="utf-8", errors="replace").splitlines()
    if want != have:
        line = next((i for i, (a, b) in enumerate(zip(want, have, strict=False)) if a != b),
                    min(len(want), len(have)))
        expected = want[line] if line < len(want) else _("(end of file)")
        problems.append(Problem(
            "MG502", _("CODEOWNERS is stale: line {line} should be {expected!r}; run `mailgov "
                       "codeowners`").format(
                line=line + 1, expected=expected), (), line + 1, 1, shown(found)))
    return problems


def write(result: Result, out: Path | None = None, root: Path | None = None) -> Path:
    root = root or repo_root(result.path)
    target = out or find(root) or root / DEFAULT_PLACE
    put(target, render(result, root))
    return target


def put(target: Path, text: str) -> None:
    """Write CODEOWNERS atomically (a reader never sees half a file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
