"""Tags by concern (README "Running one concern"): every task a role runs carries the role's
name as a tag, and in a role split into concern files a concern tag too (or ``always``); every
tag the roles and playbooks use is named in the README's vocabulary; hardening's tags pair
with its switches. The walk is tools/role_docs.py's ``role_tasks`` (the role READMEs list what
it finds); the first tests hold the walk itself to Ansible's rules on synthetic roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tools.role_docs import parse_defaults, role_tasks

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def _role(tmp_path: Path, files: dict[str, str]) -> Path:
    role = tmp_path / "r"
    (role / "tasks").mkdir(parents=True)
    for name, text in files.items():
        (role / "tasks" / name).write_text(text, encoding="utf-8")
    return role


def _by_name(role: Path) -> dict[str, frozenset[str]]:
    return {t.name: t.tags for t in role_tasks(role)}


# --- the walk ----------------------------------------------------------------------------------

def test_walk_gives_imported_tasks_the_tags_of_imports_and_blocks(tmp_path: Path) -> None:
    role = _role(tmp_path, {
        "main.yml": """
- name: Part
  ansible.builtin.import_tasks: part.yml
  when: r__part | bool
  tags: [r, part]
- name: Grouped
  tags: [r]
  block:
    - name: Inner
      ansible.builtin.import_tasks: inner.yml
      tags: [inner]
""",
        "part.yml": """
- name: A
  ansible.builtin.debug: {msg: a}
- name: B
  ansible.builtin.debug: {msg: b}
  tags: [always]
""",
        "inner.yml": """
- name: C
  ansible.builtin.debug: {msg: c}
""",
    })
    assert _by_name(role) == {"A": {"r", "part"}, "B": {"r", "part", "always"},
                              "C": {"r", "inner"}}
    assert {t.name: t.when for t in role_tasks(role)}["A"] == ("r__part | bool",)


def test_walk_passes_only_apply_tags_through_include_tasks(tmp_path: Path) -> None:
    role = _role(tmp_path, {
        "main.yml": """
- name: Dynamic
  ansible.builtin.include_tasks: part.yml
  tags: [r, part]
- name: Applied
  ansible.builtin.include_tasks:
    file: other.yml
    apply:
      tags: [r, other]
  tags: [r, other]
""",
        "part.yml": "- name: A\n  ansible.builtin.debug: {msg: a}\n",
        "other.yml": "- name: B\n  ansible.builtin.debug: {msg: b}\n",
    })
    tags = _by_name(role)
    assert tags["A"] == frozenset()  # Ansible: an include's own tags stay on the include
    assert tags["B"] == {"r", "other"}
    assert [t.name for t in role_tasks(role) if t.dynamic_untagged] == ["Dynamic"]


# --- the roles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_task_carries_its_role_and_concern(role: Path) -> None:
    tasks = role_tasks(role)
    assert tasks, f"{role.name}: no tasks found"
    problems = [f"tasks/{t.file}: {t.name!r} is an include_tasks without apply tags"
                for t in tasks if t.dynamic_untagged]
    problems += [f"tasks/{t.file}: {t.name!r} lacks the tag {role.name!r} (has {sorted(t.tags)})"
                 for t in tasks if role.name not in t.tags]
    # A role is one concern (its name only) or split: then every task has its concern (or always).
    if any(t.tags - {role.name, "always"} for t in tasks):
        problems += [f"tasks/{t.file}: {t.name!r} has no concern tag (nor always)"
                     for t in tasks if not t.tags - {role.name}]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_task_file_is_reached_from_main(role: Path) -> None:
    """A file main.yml does not import would get none of the tags the imports give."""
    reached = {"main.yml"} | {t.file for t in role_tasks(role)}
    present = {p.name for p in (role / "tasks").glob("*.yml")}
    assert present <= reached, f"not imported by tasks/main.yml: {sorted(present - reached)}"


def test_hardening_tags_pair_with_its_switches() -> None:
    """dev-sec style: hardening__<x> (a "Switch:") turns a concern off, --tags <x> selects it."""
    role = REPO / "roles" / "hardening"
    switches = {name.removeprefix("hardening__") for name, desc, _ in
                parse_defaults(role / "defaults" / "main.yml") if desc.startswith("Switch:")}
    assert len(switches) >= 6
    for switch in switches:
        tasks = [t for t in role_tasks(role) if f"hardening__{switch} | bool" in t.when]
        assert tasks, f"no task runs under hardening__{switch}"
        assert all(switch in t.tags for t in tasks), f"tasks under hardening__{switch} lack its tag"
        others = [t for t in role_tasks(role) if switch in t.tags and t not in tasks]
        assert not others, f"tag {switch} on tasks outside hardening__{switch}: {others}"


def test_dependencies_carry_the_tag_of_the_role_that_needs_them() -> None:
    for role in ROLES:
        meta = yaml.safe_load((role / "meta" / "main.yml").read_text(encoding="utf-8"))
        for dep in meta.get("dependencies") or []:
            assert role.name in (dep.get("tags") or []), f"{role.name}: dependency {dep['role']}"


# --- the vocabulary ----------------------------------------------------------------------------

def _playbook_tags() -> set[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "tags":
                    found.update([value] if isinstance(value, str) else value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for path in sorted((REPO / "playbooks").glob("*.yml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


def _used_tags() -> set[str]:
    used = _playbook_tags()
    for role in ROLES:
        used.update(*(t.tags for t in role_tasks(role)))
        meta = yaml.safe_load((role / "meta" / "main.yml").read_text(encoding="utf-8"))
        for dep in meta.get("dependencies") or []:
            used.update(dep.get("tags") or [])
    return used


def test_plays_carry_stage_tags() -> None:
    assert {"directory", "reconcile", "mailflow", "security", "lifecycle"} <= _playbook_tags()


def test_every_tag_is_in_the_readme_vocabulary() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Running one concern \(tags\)\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, "README.md has no section 'Running one concern (tags)'"
    documented = set(re.findall(r"`([a-z][a-z0-9_-]*)`", match.group(1)))
    missing = sorted(_used_tags() - documented)
    assert not missing, f"tags not described in README.md 'Running one concern': {missing}"
    assert {r.name for r in ROLES} <= documented
