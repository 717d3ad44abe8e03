#!/usr/bin/python
"""Ansible module: what this mail host knows about its users' activity (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_usage_facts
short_description: Read one mail host's usage figures for mailgov collect
description:
  - Reads, for the days O(first) to O(last), the mail log (logins, messages sent through
    submission, messages delivered over LMTP, unit mailbox reads, rate-limit locks), Dovecot's
    last-login dict, the local directory's bind and password state over C(ldapi:///) as root,
    and, with O(quota), C(doveadm quota get -A). Writes them as JSON to O(dest) (mode 0600),
    which the play fetches; the result itself holds only counts.
  - A source that cannot be read is listed under C(errors) and the others are still read.
  - The logic is the mailgov package's (module_utils/mailgov_usage_sources.py is
    mailgov/usage_sources.py); this module only passes the options. Read-only apart from O(dest).
options:
  domain: {description: The mail domain; other addresses are ignored., type: str, required: true}
  first: {description: First day read from the log (YYYY-MM-DD)., type: str, required: true}
  last: {description: Last day read from the log (YYYY-MM-DD)., type: str, required: true}
  log_files:
    description: Log files (glob patterns; .gz read too).
    type: list
    elements: str
    default: [/var/log/mail.log, /var/log/mail.log.*]
  last_login_dict:
    {description: Dovecot's last_login dict file; empty to skip., type: str, default: ""}
  quota:
    {description: Read doveadm quota (hosts holding the stores)., type: bool, default: false}
  base_dn: {description: Suffix of the local directory; empty to skip., type: str, default: ""}
  uri: {description: LDAP URI of the local slapd., type: str, default: "ldapi:///"}
  published_dir:
    description: Folder of the published directory on this host; empty to skip.
    type: str
    default: ""
  dest: {description: Where the JSON result is written on the host., type: path, required: true}
author:
  - mailgov contributors (@mailgov)
requirements:
  - python3-ldap (Debian's package; roles/mailgov_base installs it) when base_dn is set
attributes:
  check_mode:
    support: full
    details: The module only reads and writes its own result file, in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Read this host's usage figures
  mailgov_usage_facts:
    domain: monre.gov.vn
    first: "2026-12-01"
    last: "2026-12-07"
    last_login_dict: /var/lib/dovecot/last-login/last-login.dict
    quota: true
    base_dn: dc=monre,dc=gov,dc=vn
    dest: /var/lib/mailgov/usage-facts.json
"""

RETURN = r"""
users: {description: Mailboxes with any figure., type: int, returned: always}
errors: {description: "Sources not read, one line each.", type: list, returned: always}
sources: {description: Sources read., type: list, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.mailgov_ldapi import connect  # noqa: E402
from ansible.module_utils.mailgov_usage_sources import (  # noqa: E402
    collect_host,
    write_result,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "domain": {"type": "str", "required": True},
            "first": {"type": "str", "required": True},
            "last": {"type": "str", "required": True},
            "log_files": {"type": "list", "elements": "str",
                          "default": ["/var/log/mail.log", "/var/log/mail.log.*"]},
            "last_login_dict": {"type": "str", "default": ""},
            "quota": {"type": "bool", "default": False},
            "base_dn": {"type": "str", "default": ""},
            "uri": {"type": "str", "default": "ldapi:///"},
            "published_dir": {"type": "str", "default": ""},
            "dest": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    p = dict(module.params)
    uri = p.pop("uri")
    p["connect"] = lambda: connect(uri)
    try:
        result = collect_host(p)
        write_result(result, p["dest"])
    except (ValueError, OSError) as exc:
        module.fail_json(msg=f"usage facts: {exc}")
    users = set(result["activity"]) | set(result["last_login"]) | set(result["quota"]) | set(
        result["directory"])
    module.exit_json(changed=False, users=len(users), errors=result["errors"],
                     sources=result["sources"])


if __name__ == "__main__":
    main()
