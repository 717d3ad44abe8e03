#!/usr/bin/python
"""Ansible module: list the new mailboxes that have no password yet (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_initial_password
short_description: List active mailboxes without a password (those needing an initial one)
description:
  - Lists the active personal/affiliate mailboxes that have no C(userPassword) yet (new ones;
    the reconcile creates entries without a password), in one search. Read-only.
  - Runs on the directory provider over C(ldapi:///) with SASL EXTERNAL as root, because only
    the database manager can test whether a password is present (the reconciler's account
    may write passwords but never read or compare them).
  - The passwords themselves are generated, encrypted and set by
    C(python -m mailgov.credentials issue) on the controller, over TLS (playbooks/lifecycle.yml).
options:
  base_dn: {description: Suffix; people are under ou=people., type: str, required: true}
  uri: {description: LDAP URI., type: str, default: "ldapi:///"}
author:
  - mailgov contributors (@mailgov)
requirements:
  - python3-ldap (Debian's package; roles/mailgov_base installs it) on the directory provider
attributes:
  check_mode:
    support: full
    details: The module only reads; it does the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Find new mailboxes that have no password yet
  mailgov_initial_password:
    base_dn: dc=monre,dc=gov,dc=vn
  register: mailgov_pw_todo
"""

RETURN = r"""
todo: {description: "Mailboxes without a password: dn, mail, unit.", type: list, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible.module_utils.mailgov_ldapi import LdapiError, connect, message  # noqa: E402

try:
    import ldap

    HAS_LDAP = True
except ImportError:  # pragma: no cover - reported by fail_json
    HAS_LDAP = False

# Active (enabled, not locked) people with no password at all.
TODO_FILTER = ("(&(objectClass=inetOrgPerson)(mailEnabled=TRUE)"
               "(!(pwdAccountLockedTime=*))(!(userPassword=*)))")


def _first(attrs: dict, name: str) -> str:
    vals = attrs.get(name) or [b""]
    return vals[0].decode()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_dn": {"type": "str", "required": True},
            "uri": {"type": "str", "default": "ldapi:///"},
        },
        supports_check_mode=True,
    )
    if not HAS_LDAP:
        module.fail_json(msg=missing_required_lib("python3-ldap"))
    p = module.params
    try:
        conn = connect(p["uri"])
        found = conn.search_s(f"ou=people,{p['base_dn']}", ldap.SCOPE_ONELEVEL, TODO_FILTER,
                              ["mail", "ou"])
        conn.unbind_s()
    except ldap.NO_SUCH_OBJECT:
        found = []  # no ou=people yet: nothing is new
    except LdapiError as exc:
        module.fail_json(msg=str(exc))
    except ldap.LDAPError as exc:
        module.fail_json(msg=f"LDAP: {message(exc)}")
    todo = sorted(({"dn": dn, "mail": _first(a, "mail"), "unit": _first(a, "ou")}
                   for dn, a in found), key=lambda t: t["mail"])
    module.exit_json(changed=False, todo=todo)


if __name__ == "__main__":
    main()
