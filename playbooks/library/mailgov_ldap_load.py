#!/usr/bin/python3
"""Ansible module: add the desired entries that are missing (the minimal loader)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_ldap_load
short_description: Add missing directory entries from a JSON list, in one connection
description:
  - Reads the desired entries (the JSON written by C(python -m mailgov.directory)) from a file
    on the provider, lists the DNs that exist with one subtree search, and adds the others in
    the file's order (parents first). Existing entries are NOT modified or removed: that is the
    reconcile planner's job (issue 4); this is the minimal loader that gives the lab content.
  - Optionally makes a few entries accept known passwords (test mailboxes). A password is set
    with the Password Modify operation only when a simple bind with it fails.
  - Connects over C(ldapi:///) with SASL EXTERNAL (the host's root is the database manager).
  - Plans before applying; check mode reports the same counts without writing.
options:
  src: {description: Path of the JSON file on the host., type: path, required: true}
  base_dn: {description: Suffix to list existing entries under., type: str, required: true}
  passwords:
    description: Entry DN -> cleartext password the entry must accept.
    type: dict
    default: {}
  uri: {description: LDAP URI., type: str, default: "ldapi:///"}
"""

RETURN = r"""
added: {description: Number of entries added (or that would be)., type: int, returned: always}
present: {description: Number of desired entries that already existed., type: int, returned: always}
passwords_set: {description: Number of passwords set., type: int, returned: always}
"""

# Ansible modules keep DOCUMENTATION first, so the imports come after it.
import json  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    import ldap
    import ldap.dn

    HAS_LDAP = True
except ImportError:  # pragma: no cover - reported by fail_json
    HAS_LDAP = False


def _norm(dn: str) -> str:
    """Compare DNs the way LDAP does for these (case-insensitive, no stray spaces)."""
    return ",".join(r.lower().strip() for r in ldap.dn.explode_dn(dn))


def _bind_ok(uri: str, dn: str, password: str) -> bool:
    probe = ldap.initialize(uri)
    try:
        probe.simple_bind_s(dn, password)
        return True
    except (ldap.INVALID_CREDENTIALS, ldap.UNWILLING_TO_PERFORM, ldap.CONSTRAINT_VIOLATION):
        return False
    finally:
        probe.unbind_s()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
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
        with open(p["src"], encoding="utf-8") as fh:
            desired = json.load(fh)
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the desired entries from {p['src']}: {exc}")

    current = ""
    try:
        conn = ldap.initialize(p["uri"])
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.sasl_non_interactive_bind_s("EXTERNAL")
        # Plan: one search for every existing DN, then set arithmetic.
        existing = {
            _norm(dn)
            for dn, _ in conn.search_s(p["base_dn"], ldap.SCOPE_SUBTREE, "(objectClass=*)",
                                       ["1.1"])
            if dn
        }
        missing = [e for e in desired if _norm(e["dn"]) not in existing]
        wanted = {_norm(e["dn"]) for e in desired} | existing
        unknown = [dn for dn in p["passwords"] if _norm(dn) not in wanted]
        if unknown:
            module.fail_json(msg=f"passwords given for entries that are not desired: {unknown}")
        # Apply.
        if not module.check_mode:
            for entry in missing:
                current = entry["dn"]
                attrs = [("objectClass", [v.encode() for v in entry["objectClass"]])]
                attrs += [(k, [v.encode() for v in vals])
                          for k, vals in entry["attributes"].items() if vals]
                conn.add_s(entry["dn"], attrs)
        passwords_set = 0
        for dn, password in p["passwords"].items():
            current = dn
            new = _norm(dn) not in existing
            if new or not _bind_ok(p["uri"], dn, password):
                passwords_set += 1
                if not module.check_mode:
                    conn.passwd_s(dn, None, password)
    except ldap.LDAPError as exc:
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        detail = info.get("desc", "") + (": " + info["info"] if info.get("info") else "")
        module.fail_json(msg=f"LDAP error at {current or p['base_dn']}: {detail or exc}")
    module.exit_json(
        changed=bool(missing) or passwords_set > 0,
        added=len(missing),
        present=len(desired) - len(missing),
        passwords_set=passwords_set,
    )


if __name__ == "__main__":
    main()
