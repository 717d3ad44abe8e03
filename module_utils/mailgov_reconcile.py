# Copyright: mailgov contributors
# Apache License 2.0 (see pyproject.toml)
"""Shared argument spec and result mapping of the reconcile modules (mailgov_plan,
mailgov_mailboxes, mailgov_units).

The reconcile itself (validate, connect, read, plan, lock, plan again, apply, release) is
``mailgov.reconcile.reconcile``, the same code as ``mailgov apply``. This file only turns
module parameters into its Settings and its Outcome into exit_json / fail_json. The modules
run on the controller with the project's venv (the inventory sets
``ansible_python_interpreter`` of localhost to ``ansible_playbook_python``).
"""

from __future__ import annotations

import traceback
from datetime import date
from typing import Any

try:
    from mailgov.reconcile import Outcome, Settings, reconcile

    IMPORT_ERROR = None
except ImportError:  # reported by fail_json, not a traceback
    IMPORT_ERROR = traceback.format_exc()


DEFAULT_TTL = 3600  # mailgov.lock.DEFAULT_TTL (the doc fragment says it too)
MAX_DIFF = 200  # diff entries returned; a 50k-mailbox first load would flood the output

# Options every reconcile module takes (the plan module ignores the apply-only ones).
COMMON_ARGS: dict[str, dict[str, Any]] = {
    "data": {"type": "path", "required": True},
    "uri": {"type": "str", "required": True},
    "bind_dn": {"type": "str"},
    "bind_password": {"type": "str", "required": True, "no_log": True},
    "ca_file": {"type": "path"},
    "timeout": {"type": "int", "default": 10},
    "today": {"type": "str"},
    "today_max_ahead_days": {"type": "int", "default": 0},
    "base": {"type": "path"},
    "archived": {"type": "dict", "default": {}},
    "allow_mass_change": {"type": "bool", "default": False},
    "override_reason": {"type": "str", "default": ""},
    "remove_drift": {"type": "bool", "default": False},
}
APPLY_ARGS: dict[str, dict[str, Any]] = {
    "kinds": {"type": "list", "elements": "str", "default": []},
    "lock_wait": {"type": "int", "default": 0},
    "lock_ttl": {"type": "int", "default": DEFAULT_TTL},
}
PLAN_ARGS: dict[str, dict[str, Any]] = {
    "scope": {"type": "str", "default": "all", "choices": ["all", "mailboxes", "units"]},
}


def _attrs_text(attrs: Any) -> str:
    if attrs is None:
        return ""
    lines = [f"{name}: {value}" for name in sorted(attrs) for value in attrs[name]]
    return "\n".join(lines) + ("\n" if lines else "")


def diff_of(changes: list[Any]) -> list[dict[str, str]]:
    """Ansible's diff format (before/after text per entry), for --diff."""
    out = [{"before_header": c.old_dn or c.dn, "after_header": c.dn,
            "before": _attrs_text(c.before), "after": _attrs_text(c.after)}
           for c in changes[:MAX_DIFF]]
    if len(changes) > MAX_DIFF:
        out.append({"before_header": "…", "after_header": "…", "before": "",
                    "after": f"({len(changes) - MAX_DIFF} more changes not shown)\n"})
    return out


def _settings(module: Any, scope: str) -> Any:
    if IMPORT_ERROR is not None:
        module.fail_json(
            msg="cannot import the mailgov package: run this module on the controller with the "
                "project's venv (ansible_python_interpreter of localhost: "
                "\"{{ ansible_playbook_python }}\")",
            exception=IMPORT_ERROR)
    p = module.params
    today = None
    if p.get("today"):
        try:
            today = date.fromisoformat(p["today"])
        except ValueError:
            module.fail_json(msg=f"today: {p['today']!r} is not a date YYYY-MM-DD")
    return Settings(data=p["data"], uri=p["uri"], password=p["bind_password"],
                    bind_dn=p.get("bind_dn"), ca_file=p.get("ca_file"), timeout=p["timeout"],
                    today=today, archived=p.get("archived") or {},
                    allow_mass_change=(p.get("override_reason") or "").strip() or True
                    if p["allow_mass_change"] else False, remove_drift=p["remove_drift"],
                    scope=scope, kinds=tuple(p.get("kinds") or ()),
                    lock_wait=p.get("lock_wait") or 0,
                    lock_ttl=p.get("lock_ttl") or DEFAULT_TTL, base=p.get("base"),
                    today_max_ahead_days=p.get("today_max_ahead_days") or 0)


def run_apply(module: Any, scope: str) -> None:
    """The body of mailgov_mailboxes / mailgov_units: check mode is the dry run."""
    out: Outcome = reconcile(_settings(module, scope), confirm=not module.check_mode)
    result = out.report()
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = diff_of(out.writes)
    if not out.ok:
        result.pop("message", None)
        module.fail_json(msg=out.message, changed=out.changed, **result)
    module.exit_json(changed=out.changed, **result)


def run_plan(module: Any) -> None:
    """The body of mailgov_plan: never writes, reports a refused plan without failing."""
    out: Outcome = reconcile(_settings(module, module.params["scope"]), confirm=False)
    result = out.report()
    if out.plan is None:  # nothing was planned: bad data, server unreachable
        result.pop("message", None)
        module.fail_json(msg=out.message, **result)
    from mailgov.report_plan import render_markdown  # the same text as `mailgov plan`

    result["ok"] = out.plan.ok
    result["markdown"] = render_markdown(out.scoped_plan(), unit_names=out.unit_names)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = diff_of(out.writes)
    module.exit_json(changed=False, **result)
