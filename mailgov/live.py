"""Read the live directory: connect (one bind over TLS) and one paged read of the tree.

The I/O half of planning (``mailgov/plan.py`` is pure). What comes back is a
:data:`mailgov.plan.LiveState`: normalised DN -> {attribute: values}, values exactly as the
server stores them (raw UTF-8, no ldap3 type conversion: ``mailEnabled`` stays ``TRUE``,
``pwdAccountLockedTime`` stays ``000001010000Z``), attribute names as the planner spells them.

Failures are :class:`LiveError` with a one-line message that says what to check
(unreachable, TLS, credentials, missing base); callers print it, never a traceback.
A saved live state (``mailgov dump-live``) is JSON: :func:`save_json` / :func:`load_json`.
"""

from __future__ import annotations

import json
import math
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

from ldap3 import (
    AUTO_BIND_NONE,
    EXTERNAL,
    NONE,
    SASL,
    SUBTREE,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import (
    LDAPBindError,
    LDAPException,
    LDAPSocketOpenError,
    LDAPSSLConfigurationError,
    LDAPStartTLSError,
)

from mailgov.i18n import _
from mailgov.plan import READ_ATTRS, Attrs, LiveState, normalise_dn

PAGE_SIZE = 1000
JSON_FORMAT = 1  # "mailgov_live" marker of a saved state


class LiveError(Exception):
    """The live directory cannot be read; the message is one line for the user."""


def _tls(ca_file: str) -> Tls:
    if not Path(ca_file).is_file():
        raise LiveError(_("CA file {ca_file} does not exist (give --ca-file, the CA that signed "
                          "the LDAP server's certificate)").format(ca_file=ca_file))
    try:
        return Tls(ca_certs_file=ca_file, validate=ssl.CERT_REQUIRED,
                   version=ssl.PROTOCOL_TLS_CLIENT)
    except LDAPSSLConfigurationError as exc:
        raise LiveError(_("CA file {ca_file} is not usable: {error}").format(
            ca_file=ca_file, error=exc)) from None


def _explain(exc: BaseException, uri: str, bind_dn: str | None) -> str:
    """One line for an ldap3 exception: what failed and what to check."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    # ldap3 nests its socket messages in tuple reprs: keep the innermost text.
    text = text.strip("()[]\"',") or text
    if "[SSL:" in text:
        text = text[text.index("[SSL:"):].split(" (_ssl")[0]
    low = text.lower()
    if "certificate" in low or "ssl" in low or "tls" in low or isinstance(exc, LDAPStartTLSError):
        return (_("TLS with {uri} failed ({text}); check --ca-file and that the server "
                  "certificate names the host in the URI").format(uri=uri, text=text))
    if isinstance(exc, LDAPSocketOpenError):
        return _("cannot reach {uri} ({text}); check the URI, the port and that slapd runs").format(
            uri=uri, text=text)
    if isinstance(exc, LDAPBindError):
        return _("bind as {bind_dn} to {uri} refused ({text}); check --bind-dn and the "
                 "password").format(
            bind_dn=bind_dn, uri=uri, text=text)
    return _("LDAP error with {uri}: {text}").format(uri=uri, text=text)


def connect(uri: str, bind_dn: str | None, password: str | None, ca_file: str | None,
            timeout: float = 10) -> Connection:
    """A bound connection. ``ldap://`` uses StartTLS, ``ldaps://`` TLS, both verifying the
    server against ``ca_file``; ``ldapi://`` binds with SASL EXTERNAL (root on the host).

    Raises :class:`LiveError` (one line) when the server is unreachable, TLS fails or the
    credentials are refused.
    """
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in ("ldap", "ldaps", "ldapi"):
        raise LiveError(_("{uri}: use an ldap://, ldaps:// or ldapi:// URI").format(uri=uri))
    if scheme != "ldapi":
        if not ca_file:
            raise LiveError(_("a CA file is needed to verify the server (--ca-file)"))
        if not bind_dn or password is None:
            raise LiveError(_("a bind DN and a password are needed (--bind-dn, --password-file)"))
    # ldap3 packs the receive timeout into a C struct: whole seconds only.
    seconds = max(1, math.ceil(timeout))
    try:
        tls = _tls(ca_file) if scheme != "ldapi" and ca_file else None
        server = Server(uri, use_ssl=scheme == "ldaps", tls=tls, get_info=NONE,
                        connect_timeout=seconds)
        if scheme == "ldapi":
            # sasl_credentials "": an empty authzid; without it ldap3 sends none and slapd
            # 2.5 answers saslBindInProgress (the bind never completes)
            conn = Connection(server, authentication=SASL, sasl_mechanism=EXTERNAL,
                              sasl_credentials="", auto_bind=AUTO_BIND_NONE,
                              receive_timeout=seconds, raise_exceptions=False)
        else:
            conn = Connection(server, bind_dn, password, auto_bind=AUTO_BIND_NONE,
                              receive_timeout=seconds, raise_exceptions=False)
        return open_and_bind(conn, uri, start_tls=scheme == "ldap")
    except LiveError:
        raise
    except LDAPException as exc:
        raise LiveError(_explain(exc, uri, bind_dn)) from None
    except (OSError, ssl.SSLError) as exc:  # not every socket error is wrapped by ldap3
        raise LiveError(_explain(exc, uri, bind_dn)) from None


def open_and_bind(conn: Connection, uri: str, *, start_tls: bool) -> Connection:
    """Open, StartTLS when asked, bind; every failure is a :class:`LiveError`."""
    try:
        conn.open()
        if start_tls and not conn.start_tls():
            raise LiveError(_("StartTLS with {uri} failed ({reason}); check --ca-file").format(
                uri=uri, reason=_result(conn)))
        if not conn.bind():
            raise LiveError(_("bind as {user} to {uri} refused ({reason}); check --bind-dn and "
                              "the password").format(user=conn.user, uri=uri, reason=_result(conn)))
    except LiveError:
        raise
    except (LDAPException, OSError, ssl.SSLError) as exc:
        raise LiveError(_explain(exc, uri, conn.user)) from None
    except Exception as exc:
        raise LiveError(_("LDAP connection to {uri} failed: {kind}: {error}").format(
            uri=uri, kind=type(exc).__name__, error=exc)
                        ) from None
    return conn


def _result(conn: Connection) -> str:
    r = conn.result or {}
    return " ".join(str(x) for x in (r.get("description"), r.get("message")) if x) or "no answer"


def _entry_fast(response: Any, schema: Any, custom_formatter: Any,
                check_names: bool) -> dict[str, Any]:
    """ldap3's ``search_result_entry_response_to_dict_fast`` for :func:`read_live`: the DN and
    the values decoded once, as UTF-8 text, into the tuples the planner compares. ldap3's own
    builds two case-insensitive dicts per entry (values formatted, then raw) through its
    configuration lookups: about half of reading 50,000 entries (benchmarks/README.md,
    bench_migrate). The values are the same (tests/unit/test_live.py)."""
    attrs: dict[str, tuple[str, ...]] = {}
    for attribute in response[1][3]:
        values = attribute[3][1][3]
        if values:
            attrs[bytes(attribute[3][0][3]).decode("utf-8")] = tuple(
                bytes(v[3]).decode("utf-8") for v in values)
    return {"raw_dn": response[0][3], "dn": bytes(response[0][3]).decode("utf-8"),
            "raw_attributes": {}, "attributes": {}, "mailgov_attributes": attrs}


@contextmanager
def _fast_entries() -> Iterator[None]:
    """:func:`_entry_fast` in place of ldap3's while one search runs (the CLI is one thread)."""
    import ldap3.strategy.base as strategy

    saved = strategy.search_result_entry_response_to_dict_fast
    strategy.search_result_entry_response_to_dict_fast = _entry_fast
    try:
        yield
    finally:
        strategy.search_result_entry_response_to_dict_fast = saved


def read_live(conn: Connection, base_dn: str) -> LiveState:
    """ONE paged search (page size 1000) of the subtree under ``base_dn``.

    Only the managed attributes + objectClass + pwdAccountLockedTime + pwdReset are asked
    for; values come back raw (UTF-8 text exactly as stored).
    """
    out: dict[str, Attrs] = {}
    try:
        with _fast_entries():
            out = _read(conn, base_dn)
    except LDAPException as exc:
        raise LiveError(_("reading {base_dn} failed: {reason}").format(
            base_dn=base_dn, reason=_explain(exc, str(conn.server), conn.user))
                        ) from None
    except UnicodeDecodeError as exc:
        raise LiveError(_("reading {base_dn} failed: a value is not UTF-8 ({error})").format(
            base_dn=base_dn, error=exc)) from None
    result = conn.result or {}
    code = result.get("result", 0)
    if code == 32:
        raise LiveError(_("{base_dn} does not exist on the server (noSuchObject); check "
                          "organization.base_dn and that the directory role has run").format(
            base_dn=base_dn))
    if code not in (0, None):
        raise LiveError(_("reading {base_dn} failed: {reason}").format(
            base_dn=base_dn, reason=_result(conn)))
    return out


def _read(conn: Connection, base_dn: str) -> dict[str, Attrs]:
    out: dict[str, Attrs] = {}
    for item in conn.extend.standard.paged_search(
        base_dn, "(objectClass=*)", search_scope=SUBTREE, attributes=list(READ_ATTRS),
        paged_size=PAGE_SIZE, generator=True,
    ):
        if item.get("type") != "searchResEntry":
            continue  # referrals and the like: the provider holds everything
        fast = item.get("mailgov_attributes")
        if fast is not None:
            out[normalise_dn(item["dn"])] = fast
            continue
        raw = item.get("raw_attributes") or {}
        out[normalise_dn(item["dn"])] = {
            name: tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v)
                        for v in values)
            for name, values in raw.items() if values
        }
    return out


# --------------------------------------------------------------------------- saved states


def save_json(live: LiveState, path: str | Path, base_dn: str) -> None:
    """Write a live state for offline planning (``mailgov plan --live-json``)."""
    doc = {"mailgov_live": JSON_FORMAT, "base_dn": base_dn,
           "entries": {dn: {k: list(v) for k, v in attrs.items()} for dn, attrs in
                       sorted(live.items())}}
    Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n",
                          encoding="utf-8")


def load_json(path: str | Path) -> LiveState:
    """Read a live state saved by :func:`save_json` (its ``mailgov_live`` marker). Anything
    else is refused: ``{}`` or a bare mapping would be planned as a directory that lacks
    everything the data has (a create for every entry)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise LiveError(_("cannot read {path}: {error}").format(
            path=path, error=exc.strerror or exc)) from None
    except ValueError as exc:
        raise LiveError(_("{path} is not JSON: {error}").format(path=path, error=exc)) from None
    if not isinstance(doc, Mapping) or doc.get("mailgov_live") != JSON_FORMAT:
        raise LiveError(_('{path} is not a live state saved by mailgov (no "mailgov_live": '
                          "{version}); save one with `mailgov dump-live`").format(
                              path=path, version=JSON_FORMAT))
    entries: Any = doc.get("entries")
    if not isinstance(entries, Mapping):
        raise LiveError(_("{path}: expected {{dn: {{attribute: [values]}}}}").format(path=path))
    out: dict[str, Attrs] = {}
    only_lists = {list}
    for dn, attrs in entries.items():
        # The checks and the copy run at C speed (a no-op plan of 50,000 entries reads
        # 800,000 values here): map/set for the lists, str.join refuses any value not text.
        if attrs.__class__ is not dict or not set(map(type, attrs.values())) <= only_lists:
            raise LiveError(_("{path}: entry {dn!r} must map attribute names to lists of "
                              "text").format(
                path=path, dn=dn))
        try:
            "".join(chain.from_iterable(attrs.values()))
        except TypeError:
            raise LiveError(_("{path}: entry {dn!r} must map attribute names to lists of "
                              "text").format(
                path=path, dn=dn)) from None
        out[normalise_dn(str(dn))] = dict(zip(attrs, map(tuple, attrs.values()), strict=True))
    return out
