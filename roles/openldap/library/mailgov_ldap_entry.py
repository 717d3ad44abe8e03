#!/usr/bin/python3
"""Ansible module: make one LDAP entry match, over ldapi:/// with SASL EXTERNAL (root)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_ldap_entry
short_description: Make one LDAP entry (data or cn=config) match the given attributes
description:
  - Connects to the local slapd over C(ldapi:///) with SASL EXTERNAL, i.e. as the host's root,
    which the openldap role makes the manager of cn=config and of the data database.
    No password is involved.
  - Plans first (what to add, replace or delete), applies only outside check mode, and reports
    C(changed) from the plan, so check mode tells the truth.
  - In cn=config, C({n}) ordering prefixes are ignored when finding the entry
    (C(olcDatabase=mdb,cn=config) finds C(olcDatabase={1}mdb,cn=config)) and when comparing values
    of ordered attributes (C(olcAccess), C(olcDbIndex), C(olcSyncrepl), schema definitions).
  - Uses python3-ldap (libldap), installed by the role.
options:
  dn: {description: "DN of the entry; C({n}) prefixes may be left out.", type: str, required: true}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
  objectClass:
    description: Object classes; used to create the entry, and added when missing.
    type: list
    elements: str
    default: []
  attributes:
    description: Attributes whose values must be exactly these (others are left alone).
      A value may be a string or a list. An empty list removes the attribute.
    type: dict
    default: {}
  add_values:
    description: Attributes that must contain at least these values (e.g. olcModuleLoad).
    type: dict
    default: {}
  password:
    description: Cleartext password the entry must accept in a simple bind. When the bind fails
      it is set with the Password Modify operation, so slapd stores its own salted hash.
    type: str
  uri: {description: LDAP URI., type: str, default: "ldapi:///"}
"""

EXAMPLES = r"""
- name: Enable the ppolicy overlay on the data database
  mailgov_ldap_entry:
    dn: olcOverlay=ppolicy,olcDatabase=mdb,cn=config
    objectClass: [olcOverlayConfig, olcPPolicyConfig]
    attributes:
      olcOverlay: ppolicy
      olcPPolicyHashCleartext: "TRUE"

- name: A service account with its password (set only when it differs)
  mailgov_ldap_entry:
    dn: cn=postfix,ou=services,dc=monre,dc=gov,dc=vn
    objectClass: [applicationProcess, simpleSecurityObject]
    attributes:
      cn: postfix
    password: "{{ openldap__service_passwords.postfix }}"
  no_log: true
"""

RETURN = r"""
dn: {description: "The entry's real DN (with {n} prefixes).", type: str, returned: always}
changes:
  description: Attribute names changed (values are never returned).
  type: list
  returned: always
"""

# Ansible modules keep DOCUMENTATION first, so the imports come after it.
import re  # noqa: E402
from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    import ldap
    import ldap.dn

    HAS_LDAP = True
except ImportError:  # pragma: no cover - reported by fail_json
    HAS_LDAP = False

_ORDER = re.compile(r"^\{-?\d+\}")


def _strip(value: str) -> str:
    return _ORDER.sub("", value, count=1)


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


class Directory:
    def __init__(self, uri: str) -> None:
        self.conn = ldap.initialize(uri)
        self.conn.set_option(ldap.OPT_REFERRALS, 0)
        self.conn.sasl_non_interactive_bind_s("EXTERNAL")
        self.uri = uri

    def read(self, dn: str) -> tuple[str, dict[str, list[str]]] | None:
        try:
            res = self.conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["*", "+"])
        except ldap.NO_SUCH_OBJECT:
            return None
        if not res:
            return None
        real, attrs = res[0]
        return real, {k: [v.decode("utf-8") for v in vals] for k, vals in attrs.items()}

    def resolve(self, dn: str) -> str | None:
        """The live DN for `dn`, matching RDN values without their {n} prefixes."""
        found = self.read(dn)
        if found is not None:
            return found[0]
        rdns = ldap.dn.explode_dn(dn)
        if len(rdns) < 2:
            return None
        parent = self.resolve(",".join(rdns[1:]))
        if parent is None:
            return None
        want = _strip_rdn(rdns[0])
        try:
            children = self.conn.search_s(parent, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["1.1"])
        except ldap.NO_SUCH_OBJECT:
            return None
        for child, _ in children:
            if _strip_rdn(ldap.dn.explode_dn(child)[0]) == want:
                return child
        return None

    def password_ok(self, dn: str, password: str) -> bool:
        probe = ldap.initialize(self.uri)
        try:
            probe.simple_bind_s(dn, password)
            return True
        except (ldap.INVALID_CREDENTIALS, ldap.UNWILLING_TO_PERFORM, ldap.CONSTRAINT_VIOLATION):
            return False
        finally:
            probe.unbind_s()


def _strip_rdn(rdn: str) -> str:
    name, _, value = rdn.partition("=")
    return f"{name.lower()}={_strip(value).lower()}"


def _get(attrs: dict[str, list[str]], name: str) -> list[str]:
    for key, vals in attrs.items():
        if key.lower() == name.lower():
            return vals
    return []


def plan(
    live: dict[str, list[str]],
    object_classes: list[str],
    attributes: dict[str, Any],
    add_values: dict[str, Any],
) -> list[tuple[int, str, list[str]]]:
    """Modifications (op, attr, values) that make `live` match; empty when it already does."""
    mods: list[tuple[int, str, list[str]]] = []
    have_oc = {v.lower() for v in _get(live, "objectClass")}
    missing_oc = [oc for oc in object_classes if oc.lower() not in have_oc]
    if missing_oc:
        mods.append((ldap.MOD_ADD, "objectClass", missing_oc))
    for name, want in attributes.items():
        want_v = _values(want)
        have_v = _get(live, name)
        if [_strip(v) for v in have_v] == [_strip(v) for v in want_v]:
            continue
        if not want_v:
            mods.append((ldap.MOD_DELETE, name, []))
        else:
            mods.append((ldap.MOD_REPLACE, name, want_v))
    for name, want in add_values.items():
        have_s = {_strip(v) for v in _get(live, name)}
        extra = [v for v in _values(want) if _strip(v) not in have_s]
        if extra:
            mods.append((ldap.MOD_ADD, name, extra))
    return mods


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dn": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "objectClass": {"type": "list", "elements": "str", "default": []},
            "attributes": {"type": "dict", "default": {}},
            "add_values": {"type": "dict", "default": {}},
            "password": {"type": "str", "no_log": True},
            "uri": {"type": "str", "default": "ldapi:///"},
        },
        supports_check_mode=True,
    )
    if not HAS_LDAP:
        module.fail_json(msg=missing_required_lib("python3-ldap"))
    p = module.params
    try:
        d = Directory(p["uri"])
        real = d.resolve(p["dn"])
        changes: list[str] = []
        if p["state"] == "absent":
            if real is not None:
                changes = ["(entry)"]
                if not module.check_mode:
                    d.conn.delete_s(real)
            module.exit_json(changed=bool(changes), dn=real or p["dn"], changes=changes)

        if real is None:
            entry = [("objectClass", [v.encode() for v in p["objectClass"]])]
            for name, want in {**p["attributes"], **p["add_values"]}.items():
                vals = _values(want)
                if vals:
                    entry.append((name, [v.encode() for v in vals]))
            # The parent may carry a {n} prefix the caller left out (olcDatabase={1}mdb).
            rdns = ldap.dn.explode_dn(p["dn"])
            parent = d.resolve(",".join(rdns[1:])) if len(rdns) > 1 else None
            real = f"{rdns[0]},{parent}" if parent else p["dn"]
            if p["password"] is not None:
                # simpleSecurityObject needs one at add time; re-set below with Password
                # Modify so slapd stores its own salted hash, whatever the ppolicy settings.
                entry.append(("userPassword", [p["password"].encode()]))
            changes = ["(entry)"]
            if not module.check_mode:
                d.conn.add_s(real, entry)
                if p["password"] is not None:
                    d.conn.passwd_s(real, None, p["password"])
        else:
            found = d.read(real)
            live = found[1] if found else {}
            mods = plan(live, p["objectClass"], p["attributes"], p["add_values"])
            changes = [m[1] for m in mods]
            if mods and not module.check_mode:
                d.conn.modify_s(real, [(op, a, [v.encode() for v in vs] or None)
                                       for op, a, vs in mods])
        if (p["password"] is not None and changes != ["(entry)"]
                and not d.password_ok(real, p["password"])):
            changes.append("userPassword")
            if not module.check_mode:
                d.conn.passwd_s(real, None, p["password"])
    except ldap.LDAPError as exc:
        info = exc.args[0] if exc.args else {}
        detail = info.get("desc", "") + (": " + info["info"] if info.get("info") else "")
        module.fail_json(msg=f"LDAP error on {p['dn']}: {detail or exc}")
    module.exit_json(changed=bool(changes), dn=real, changes=changes)


if __name__ == "__main__":
    main()
