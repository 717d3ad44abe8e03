#!/usr/bin/python
"""Ansible module mailgov_plan: thin over mailgov.plan and mailgov.apply."""
from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_plan
short_description: Return the reconcile plan (read-only)
description:
  - Validates the data, reads the live directory and returns the plan - every change the
    reconcile would make, drift, and the safety rails it trips. Never writes, so it always
    reports C(changed=false); use it to show the plan before applying (and in CI, as a
    pull-request comment).
  - Runs on the controller with the project's venv (C(delegate_to=localhost),
    C(ansible_python_interpreter) set to C(ansible_playbook_python)) and imports the
    C(mailgov) package, the same code as the C(mailgov) command. One bind with the
    reconciler's account over TLS, one paged read of the subtree, then writes only for what
    differs. No per-mailbox loop in Ansible.
options:
  scope:
    description: Which changes to return - all, only C(mailboxes) (ou=people) or only C(units).
    type: str
    choices: [all, mailboxes, units]
    default: all
author:
  - mailgov contributors (@mailgov)
requirements:
  - the mailgov package and ldap3 (the project's venv on the controller)
attributes:
  check_mode:
    support: full
    details: The module never writes; check mode changes nothing in what it does.
  diff_mode:
    support: full
    details: Each entry's attributes before and after, as the plan would change them.
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailgov_reconcile
"""

EXAMPLES = r"""
- name: Show what the reconcile would do
  mailgov_plan:
    data: "{{ playbook_dir }}/../data/mailboxes.yaml"
    uri: ldap://mail1.monre.gov.vn
    bind_password: "{{ vault_ldap_mailgov }}"
    ca_file: /etc/ssl/mailgov/ca.crt
  delegate_to: localhost
  register: reconcile_plan
"""

RETURN = r"""
status:
  description:
    - What the reconcile did - nothing, pending (check mode), applied, or why it stopped
      (problems, unreachable, refused, locked, incomplete). The same values as
      C(mailgov apply --format json).
  type: str
  returned: always
  sample: applied
replanned:
  description: The plan made under the reconcile lock differed from the first one.
  type: bool
  returned: always
counts:
  description: Number of planned changes of this module's scope, per change kind.
  type: dict
  returned: always
  sample: {create: 3, suspend: 1, add_member: 2}
changes:
  description:
    - The planned changes (the first 200), each with kind, dn, subject, unit, reason and
      add/delete/replace.
  type: list
  elements: dict
  returned: always
changes_total:
  description: Number of planned changes of this scope.
  type: int
  returned: always
drift:
  description:
    - Live entries or attributes the data does not explain (first 200), reported only.
  type: list
  elements: dict
  returned: always
drift_total:
  description: Number of drift items.
  type: int
  returned: always
refusals:
  description: Safety rails the plan tripped (the task fails when there are any).
  type: list
  elements: str
  returned: always
pending:
  description: Changes that are the mail host's work (archive of a store), not the directory's.
  type: list
  elements: dict
  returned: always
ok:
  description: False when the plan trips a safety rail (it would be refused).
  type: bool
  returned: always
markdown:
  description: The plan for humans (counts first, grouped by unit and change kind).
  type: str
  returned: always
diff:
  description: Before/after of each entry the plan would change (with --diff).
  type: list
  elements: dict
  returned: when diff mode is on
"""

# Ansible modules keep the documentation first, so the imports come after it.
from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mailgov_reconcile import (  # noqa: E402
    COMMON_ARGS,
    PLAN_ARGS,
    run_plan,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={**COMMON_ARGS, **PLAN_ARGS},
        supports_check_mode=True,
    )
    run_plan(module)


if __name__ == "__main__":
    main()
