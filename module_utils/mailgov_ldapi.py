# Managed by Ansible (roles/mailgov_base): local changes are overwritten.
"""The one connection to the local slapd as the host's root: ldapi:// + SASL EXTERNAL.

Why this file is where it is: code that talks to slapd as root runs in two places, and both
import this one file.
  * Ansible modules (library/mailgov_initial_password.py, library/mailgov_mail_store.py) import
    it as ``ansible.module_utils.mailgov_ldapi``: Ansible ships module_utils to the host with
    each module (ansible.cfg module_utils = module_utils).
  * Scripts the roles install on the servers (mailgov-account-expiry, mailgov_ratelimit.py,
    mailgov-restore-ldif) cannot import the controller's venv package (``mailgov``) nor
    Ansible's module_utils: roles/mailgov_base installs this same file (its files/ entry is a
    symlink here) as /usr/local/lib/mailgov/mailgov_ldapi.py, and the scripts import it
    from there.
So the bind, its timeouts and its error text exist once. The ``mailgov`` package's own LDAP
connection (the reconciler, over the network with TLS and a password) is mailgov/live.py.

python3-ldap (libldap) only, as slapd's own tools use: Debian's package, installed by
roles/mailgov_base on every host that gets this file. Python 3.11 (Debian 12), no other import.
"""

from __future__ import annotations

from typing import Any

DEFAULT_URI = "ldapi:///"


class LdapiError(Exception):
    """The local slapd cannot be used; the message is one line for a log or fail_json."""


def message(exc: BaseException) -> str:
    """One line for a python-ldap exception (its args are a dict with desc and info)."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    text = " ".join(str(info.get(k, "")) for k in ("desc", "info")).strip()
    return text or str(exc) or type(exc).__name__


def connect(uri: str = DEFAULT_URI, timeout: float = 10, op_timeout: float = 120) -> Any:
    """A python-ldap connection bound as root (SASL EXTERNAL over the unix socket).

    Referrals are never chased (a replica's referral must not send root's operation
    elsewhere). Raises :class:`LdapiError` when python3-ldap is missing or the bind fails.
    """
    try:
        import ldap
    except ImportError:
        raise LdapiError("python3-ldap is not installed (roles/mailgov_base installs it)"
                         ) from None
    try:
        conn = ldap.initialize(uri)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, timeout)
        conn.set_option(ldap.OPT_TIMEOUT, op_timeout)
        conn.sasl_external_bind_s()
    except ldap.LDAPError as exc:
        raise LdapiError(f"cannot bind to {uri} as root (SASL EXTERNAL; is slapd running?): "
                         f"{message(exc)}") from None
    return conn


def entry_exists(conn: Any, dn: str) -> bool:
    """True when `dn` exists (a base search for no attributes)."""
    import ldap

    try:
        conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
        return True
    except ldap.NO_SUCH_OBJECT:
        return False
