#!/usr/bin/python
"""Ansible module mailgov_mailboxes: thin over mailgov.plan and mailgov.apply."""
from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_mailboxes
short_description: Make the mailbox entries under ou=people match the data file
description:
  - Plans with C(mailgov.plan) (desired data x live directory) and applies the changes to
    personal and affiliate mailboxes (C(uid=...,ou=people,BASE)) - create, modify, rename (the
    old address stays an alias), move, suspend, cancel, restore, purge - in plan order,
    under the reconcile lock. Changes to units and groups are left to M(mailgov_units).
  - Run it before M(mailgov_units) - a group is written after its members exist, so the
    memberof overlay gives them C(memberOf).
  - Check mode plans and reports C(changed) exactly as a real run would, without writing.
    Diff mode returns each entry's attributes before and after.
  - Runs on the controller with the project's venv (C(delegate_to=localhost),
    C(ansible_python_interpreter) set to C(ansible_playbook_python)) and imports the
    C(mailgov) package, the same code as the C(mailgov) command. One bind with the
    reconciler's account over TLS, one paged read of the subtree, then writes only for what
    differs. No per-mailbox loop in Ansible.
author:
  - mailgov contributors (@mailgov)
requirements:
  - the mailgov package and ldap3 (the project's venv on the controller)
attributes:
  check_mode:
    support: full
    details: Plans and reports C(changed) exactly as a real run would, without writing.
  diff_mode:
    support: full
    details: Each entry's attributes before and after.
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mailgov_reconcile
  - mailgov_reconcile.lock
"""

EXAMPLES = r"""
- name: Make the mailboxes match the data
  mailgov_mailboxes:
    data: "{{ playbook_dir }}/../data/mailboxes.yaml"
    uri: ldap://mail1.monre.gov.vn
    bind_password: "{{ vault_ldap_mailgov }}"
    ca_file: /etc/ssl/mailgov/ca.crt
    lock_wait: 120
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
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
stores:
  description:
    - The mail host's work from this plan, the one purge gate - C(kind) archive (store to
      archive) or purge (entry deleted by this apply, so the store may go after its checks),
      with C(address), C(dn) and C(store) (the live entry's home).
  type: list
  elements: dict
  returned: always
applied:
  description:
    - What the apply wrote - applied, failed, not_attempted, aborted, counts,
      errors (kind, dn, message), seconds.
  type: dict
  returned: when changes were applied
diff:
  description: Before/after of each changed entry (with --diff).
  type: list
  elements: dict
  returned: when diff mode is on
"""

# Ansible modules keep the documentation first, so the imports come after it.
from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mailgov_reconcile import (  # noqa: E402
    APPLY_ARGS,
    COMMON_ARGS,
    run_apply,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={**COMMON_ARGS, **APPLY_ARGS},
        supports_check_mode=True,
    )
    run_apply(module, "mailboxes")


if __name__ == "__main__":
    main()
