#!/usr/bin/python3
"""Ansible module: find new mailboxes without a password; set their initial password."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_initial_password
short_description: Initial passwords of new mailboxes (Password Modify + pwdReset TRUE)
description:
  - C(state=query) lists the active personal/affiliate mailboxes that have no C(userPassword)
    yet (new ones: the reconcile creates entries without a password), in one search.
  - C(state=set) gives each listed DN its password with the Password Modify extended
    operation (RFC 3062; slapd hashes it, ppolicy checks it) and writes C(pwdReset TRUE), so
    Dovecot refuses mail logins until the person has changed it (docs/reconcile.md,
    "Lifecycle"). An entry that has a password by now is left alone (idempotent).
  - Runs on the directory provider over C(ldapi:///) with SASL EXTERNAL as root (the
    database manager; no administrator password exists). The passwords are C(no_log).
options:
  state: {description: query or set., type: str, choices: [query, set], default: query}
  base_dn: {description: Suffix; people are under ou=people., type: str, required: true}
  passwords: {description: "DN -> initial password (state=set).", type: dict, default: {}}
  uri: {description: LDAP URI., type: str, default: "ldapi:///"}
"""

RETURN = r"""
todo: {description: "Mailboxes without a password: dn, mail, unit.", type: list, returned: always}
set: {description: DNs whose password was set (or would be)., type: list, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

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
            "state": {"type": "str", "choices": ["query", "set"], "default": "query"},
            "base_dn": {"type": "str", "required": True},
            "passwords": {"type": "dict", "default": {}, "no_log": True},
            "uri": {"type": "str", "default": "ldapi:///"},
        },
        supports_check_mode=True,
    )
    if not HAS_LDAP:
        module.fail_json(msg=missing_required_lib("python3-ldap"))
    p = module.params
    try:
        conn = ldap.initialize(p["uri"])
        conn.sasl_non_interactive_bind_s("EXTERNAL")
        found = conn.search_s(f"ou=people,{p['base_dn']}", ldap.SCOPE_ONELEVEL, TODO_FILTER,
                              ["mail", "ou"])
        todo = sorted(({"dn": dn, "mail": _first(a, "mail"), "unit": _first(a, "ou")}
                       for dn, a in found), key=lambda t: t["mail"])
        done: list[str] = []
        if p["state"] == "set":
            waiting = {t["dn"].lower() for t in todo}
            for dn, password in sorted(p["passwords"].items()):
                if dn.lower() not in waiting:
                    continue  # has a password by now: never overwrite a user's choice
                done.append(dn)
                if module.check_mode:
                    continue
                conn.passwd_s(dn, None, password)
                conn.modify_s(dn, [(ldap.MOD_REPLACE, "pwdReset", [b"TRUE"])])
        conn.unbind_s()
    except ldap.LDAPError as exc:
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        module.fail_json(msg=f"LDAP: {info.get('desc', exc)} {info.get('info', '')}".strip())
    module.exit_json(changed=bool(done), todo=todo, set=done)


if __name__ == "__main__":
    main()
