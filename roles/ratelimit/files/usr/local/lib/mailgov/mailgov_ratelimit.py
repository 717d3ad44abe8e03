#!/usr/bin/python3
"""Outbound rate limit for authenticated senders: a Postfix policy service (ABUSE-02, -04..06).

Postfix asks at each RCPT of an authenticated session (check_sasl_access → check_policy_service).
A message counts once, at its first recipient OUTSIDE the local domains. When a user has
already sent `messages` such messages in the last `window_minutes`, the next one is refused,
the account is locked in the directory (pwdAccountLockedTime on the provider, over ldapi as
root = manager) and the administrators get a mail. Counters live in memory: a restart (after
an administrator unlocks the account) starts from zero.

Who may ask (ABUSE-04): only Postfix.
- mode "server" (the primary MX): a unix socket in Postfix's private directory, owned by
  postfix, mode 0600: no other local user can connect. Optionally a TCP listener that speaks
  TLS only and accepts a client only with a certificate of the CA whose name is in
  `tls_peers` (the backup MX hosts): no request is read before that.
- mode "relay" (a backup MX): the same unix socket for its own Postfix; each request goes,
  unchanged, over TLS with the host's certificate to the server, whose answer comes back. So
  one user's count covers every MX host (ABUSE-05). If the server cannot be reached the
  relay closes the connection and Postfix applies smtpd_policy_service_default_action.

An administrator is never locked by the service (ABUSE-06): when one crosses the limit (their
entry's pwdPolicySubentry is `admin_policy_dn`), their messages to outside addresses are
refused until they are back under the limit, and the administrators are told; the account
stays usable.

Standard library only, plus the shared ldapi helper for the lock (mailgov_ldapi.py beside this
file, installed by roles/mailgov_base with python3-ldap). The decision logic
(:class:`RateLimiter`) has no I/O so it is unit-tested on its own (tests/unit/test_ratelimit.py).
Configuration: one JSON file (default /etc/mailgov/ratelimit.json), see roles/ratelimit.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import pwd
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, BinaryIO

log = logging.getLogger("mailgov-ratelimit")

MAX_LINE = 4096  # Postfix attribute lines are far shorter
MAX_ATTRIBUTES = 100  # a request has ~30; more is not Postfix
IDLE_TIMEOUT_S = 600  # Postfix drops an idle policy connection after 300 s (max_idle)
TLS_HANDSHAKE_TIMEOUT_S = 10


@dataclass
class Decision:
    action: str          # the Postfix answer: DUNNO or "REJECT ..."
    lock: bool = False   # True exactly once: the request that crossed the limit
    count: int = 0       # outside messages in the window, this one included


@dataclass
class RateLimiter:
    """Sliding window of outside messages per user; no I/O, the clock is passed in."""

    messages: int
    window_s: float
    local_domains: tuple[str, ...]
    reject_text: str = ("REJECT 5.7.1 Outbound rate limit exceeded ({messages} messages to "
                        "outside addresses in {minutes} minutes): account locked, contact "
                        "the IT unit")
    throttle_text: str = ("REJECT 5.7.1 Outbound rate limit exceeded ({messages} messages to "
                          "outside addresses in {minutes} minutes): try again later")
    _events: dict[str, deque[float]] = field(default_factory=dict)
    _counted: dict[tuple[str, str], float] = field(default_factory=dict)
    _locked: set[str] = field(default_factory=set)
    _throttled: set[str] = field(default_factory=set)

    def is_local(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.local_domains)

    def text(self, template: str) -> str:
        return template.format(messages=self.messages, minutes=round(self.window_s / 60))

    def reset(self, user: str) -> None:
        """Forget a user's window and lock flag (after an administrator unlocked them)."""
        user = user.lower()
        self._events.pop(user, None)
        self._locked.discard(user)
        self._throttled.discard(user)

    def throttle(self, user: str) -> None:
        """A user the service must not lock (an administrator): instead of staying refused
        until a restart, they are refused only while over the limit."""
        user = user.lower()
        self._locked.discard(user)
        self._throttled.add(user)

    def check(self, request: dict[str, str], now: float) -> Decision:
        user = request.get("sasl_username", "").strip().lower()
        recipient = request.get("recipient", "").strip()
        if not user or not recipient or self.is_local(recipient):
            return Decision("DUNNO")
        if user in self._locked:
            return Decision(self.text(self.reject_text), count=len(self._events.get(user, ())))
        events = self._events.setdefault(user, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        # Forget message instances older than the window (bounded memory).
        for key in [k for k, t in self._counted.items() if t <= now - self.window_s]:
            del self._counted[key]
        key = (user, request.get("instance", ""))
        if key[1] and key in self._counted:
            return Decision("DUNNO", count=len(events))  # same message, another outside rcpt
        if user in self._throttled:
            if len(events) >= self.messages:
                return Decision(self.text(self.throttle_text), count=len(events))
            self._throttled.discard(user)  # back under the limit: a new crossing is news
        if len(events) >= self.messages:
            self._locked.add(user)
            return Decision(self.text(self.reject_text), lock=True, count=len(events) + 1)
        events.append(now)
        self._counted[key] = now
        return Decision("DUNNO", count=len(events))


def parse_request(lines: list[str]) -> dict[str, str]:
    """name=value lines of one Postfix policy request (the blank line already removed)."""
    req: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if sep:
            req[name.strip()] = value
    return req


class Protected(Exception):
    """The account is an administrator's: the service never locks it."""


def _norm_dn(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))


def ldap_lock(config: dict[str, Any], user: str, when: datetime) -> str:
    """Set pwdAccountLockedTime on the user's entry over ldapi (root = manager). Returns the DN.
    Raises Protected (nothing written) for an administrator."""
    # Imported late (both beside this file on the host) so the logic imports without them.
    import ldap
    import ldap.filter
    from mailgov_ldapi import connect, message

    conn = connect(config["ldap_uri"])
    try:
        safe = ldap.filter.escape_filter_chars(user)
        found = [(dn, attrs) for dn, attrs in conn.search_s(
            config["ldap_base"], ldap.SCOPE_SUBTREE,
            f"(&(objectClass=inetOrgPerson)(mail={safe}))", ["pwdPolicySubentry"]) if dn]
        if len(found) != 1:
            raise LookupError(f"{user}: {len(found)} directory entries")
        dn, attrs = found[0]
        admin_policy = _norm_dn(config.get("admin_policy_dn", ""))
        policies = {_norm_dn(v.decode()) for v in attrs.get("pwdPolicySubentry", [])}
        if admin_policy and admin_policy in policies:
            raise Protected(f"{dn} is an administrator (pwdPolicySubentry {admin_policy})")
        stamp = when.strftime("%Y%m%d%H%M%SZ")
        conn.modify_s(dn, [(ldap.MOD_REPLACE, "pwdAccountLockedTime", [stamp.encode()])])
        return dn
    except ldap.LDAPError as exc:
        raise RuntimeError(f"{user}: {message(exc)}") from None
    finally:
        conn.unbind_s()


def notify(config: dict[str, Any], user: str, decision: Decision, outcome: str,
           request: dict[str, str], locked: bool = True) -> None:
    """Mail the administrators through the local sendmail (signed like any local mail)."""
    msg = EmailMessage()
    msg["From"] = config["notify_from"]
    msg["To"] = ", ".join(config["notify_to"])
    state = "locked" if locked else "over the limit (administrator: NOT locked)"
    msg["Subject"] = f"[mailgov] outbound rate limit: {user} {state}"
    after = ("Check the account (compromised password? bulk mail?), reset its password, then "
             "remove pwdAccountLockedTime and restart mailgov-ratelimit to clear its counter "
             "(docs/security.md).\n") if locked else (
             "The service does not lock administrators (ABUSE-06): their messages to outside "
             "addresses are refused until they are back under the limit. Check the account "
             "(compromised password?) and lock it by hand if needed (docs/security.md).\n")
    msg.set_content(
        f"The account {user} sent more than {config['messages']} messages to outside "
        f"addresses within {config['window_minutes']} minutes (ABUSE-02).\n\n"
        f"Directory lock: {outcome}\n"
        f"Last attempt: client {request.get('client_address', '?')}, "
        f"sender <{request.get('sender', '')}>, recipient <{request.get('recipient', '')}>, "
        f"service {request.get('service', '?') or '?'}\n\n" + after)
    subprocess.run([config.get("sendmail", "/usr/sbin/sendmail"), "-t", "-oi",
                    "-f", config["notify_from"]], input=msg.as_bytes(), check=True, timeout=60)


class Service:
    """The limiter plus what happens when it fires (lock, notify), serialised by a lock."""

    def __init__(self, config: dict[str, Any],
                 locker: Callable[[dict[str, Any], str, datetime], str] = ldap_lock,
                 notifier: Callable[..., None] = notify) -> None:
        self.config = config
        self.limiter = RateLimiter(int(config["messages"]), float(config["window_minutes"]) * 60,
                                   tuple(d.lower() for d in config["local_domains"]))
        self.locker, self.notifier = locker, notifier
        self.mutex = threading.Lock()

    def handle(self, request: dict[str, str], now: float | None = None) -> str:
        with self.mutex:
            decision = self.limiter.check(request, time.time() if now is None else now)
        if not decision.lock:
            return decision.action
        user = request.get("sasl_username", "").strip().lower()
        locked = True
        try:
            outcome = "locked " + self.locker(self.config, user, datetime.now(UTC))
        except Protected as exc:
            with self.mutex:
                self.limiter.throttle(user)
            locked, outcome = False, f"NOT locked: {exc}"
            decision.action = self.limiter.text(self.limiter.throttle_text)
        except Exception as exc:  # the refusal stands; the admins must know it failed
            outcome = f"FAILED ({exc})"
        log.warning("rate limit: %s exceeded %s messages in %s min: %s", user,
                    self.config["messages"], self.config["window_minutes"], outcome)
        try:
            self.notifier(self.config, user, decision, outcome, request, locked=locked)
        except Exception as exc:
            log.error("notification for %s failed: %s", user, exc)
        return decision.action


# --- the wire: Postfix's policy protocol over a unix socket, TLS between MX hosts -------------


def read_request(rfile: BinaryIO) -> list[str] | None:
    """The lines of one request up to its blank line; None at end of stream or on garbage."""
    lines: list[str] = []
    while True:
        raw = rfile.readline(MAX_LINE)
        if not raw or not raw.endswith(b"\n") or len(lines) > MAX_ATTRIBUTES:
            return None
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            return lines
        lines.append(line)


def peer_names(cert: dict[str, Any]) -> set[str]:
    """The DNS names (SAN, else CN) of a verified peer certificate, lower case."""
    names = {v.lower() for k, v in cert.get("subjectAltName", ()) if k == "DNS"}
    if not names:
        names = {v.lower() for rdn in cert.get("subject", ()) for k, v in rdn
                 if k == "commonName"}
    return names


def server_tls_context(config: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config["tls_cert"], config["tls_key"])
    ctx.load_verify_locations(config["tls_ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED  # no certificate of the CA: handshake refused
    return ctx


def client_tls_context(config: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=config["tls_ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config["tls_cert"], config["tls_key"])
    return ctx


class _PolicyHandler(socketserver.StreamRequestHandler):
    """One Postfix connection (or one relay's TLS connection): requests until it closes."""

    server: Any
    timeout = IDLE_TIMEOUT_S

    def answer(self, lines: list[str]) -> str | None:
        return self.server.service.handle(parse_request(lines))

    def serve(self) -> None:
        while (lines := read_request(self.rfile)) is not None:
            action = self.answer(lines)
            if action is None:
                return  # the relay lost the server: Postfix applies its default action
            self.wfile.write(f"action={action}\n\n".encode())
            self.wfile.flush()

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            self.serve()


class _TLSHandler(_PolicyHandler):
    """A backup MX's relay: TLS with a certificate of the CA naming one of `tls_peers`."""

    def setup(self) -> None:
        peer = self.client_address[0]
        self.request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        try:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            names = peer_names(self.request.getpeercert() or {})
        except (OSError, ssl.SSLError) as exc:
            # The failed handshake has closed the socket: nothing to read or write.
            log.warning("refused policy client %s: TLS: %s", peer, exc)
            self.refused = True
            return
        self.refused = not names & self.server.peers
        if self.refused:
            log.warning("refused policy client %s: certificate names %s not in tls_peers",
                        peer, ", ".join(sorted(names)) or "(none)")
        self.request.settimeout(IDLE_TIMEOUT_S)
        super().setup()

    def handle(self) -> None:
        if not self.refused:
            super().handle()

    def finish(self) -> None:
        if hasattr(self, "wfile"):
            with contextlib.suppress(OSError):
                super().finish()


class _RelayHandler(_PolicyHandler):
    """The backup MX's socket: each request to the server over TLS, its answer back."""

    upstream: Any = None
    up_file: Any = None

    def ask(self, lines: list[str]) -> dict[str, str]:
        cfg = self.server.config
        if self.upstream is None:
            raw = socket.create_connection((cfg["server_host"], int(cfg["server_port"])),
                                           timeout=TLS_HANDSHAKE_TIMEOUT_S)
            self.upstream = self.server.tls.wrap_socket(raw, server_hostname=cfg["server_name"])
            self.upstream.settimeout(30)
            self.up_file = self.upstream.makefile("rb")
        self.upstream.sendall(("\n".join(lines) + "\n\n").encode())
        return parse_request(read_request(self.up_file) or [])

    def answer(self, lines: list[str]) -> str | None:
        host = self.server.config["server_host"]
        for attempt in (1, 2):  # a kept connection the server closed (idle): one new one
            reused = self.upstream is not None
            try:
                attrs = self.ask(lines)
            except (OSError, ssl.SSLError) as exc:
                attrs, why = {}, str(exc)
            else:
                why = "no answer"
            if "action" in attrs:
                return attrs["action"]
            self.close_upstream()
            if not reused or attempt == 2:
                log.warning("policy server %s: %s", host, why)
                return None
        return None

    def close_upstream(self) -> None:
        if self.upstream is not None:
            with contextlib.suppress(OSError):
                self.upstream.close()
        self.upstream = self.up_file = None

    def finish(self) -> None:
        self.close_upstream()
        super().finish()


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, config: dict[str, Any], handler: type, **extra: Any) -> None:
        self.config = config
        for k, v in extra.items():
            setattr(self, k, v)
        path = config["unix_socket"]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        old = os.umask(0o177)  # the socket is never wider than 0600, not even for a moment
        try:
            super().__init__(path, handler)
        finally:
            os.umask(old)
        owner = config.get("unix_owner", "postfix")
        os.chown(path, pwd.getpwnam(owner).pw_uid, grp.getgrnam(owner).gr_gid)
        os.chmod(path, 0o600)


class _TLSServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, config: dict[str, Any], service: Service) -> None:
        self.service = service
        self.tls = server_tls_context(config)
        self.peers = {p.lower() for p in config["tls_peers"]}
        super().__init__((config["listen_address"], int(config["listen_port"])), _TLSHandler)


def build(config: dict[str, Any]) -> list[socketserver.BaseServer]:
    """The listeners of a configuration (raises KeyError/OSError/ssl.SSLError on a bad one)."""
    if config.get("mode", "server") == "relay":
        return [_UnixServer(config, _RelayHandler, tls=client_tls_context(config))]
    service = Service(config)
    servers: list[socketserver.BaseServer] = [
        _UnixServer(config, _PolicyHandler, service=service)]
    if config.get("tls_peers"):
        servers.append(_TLSServer(config, service))
    return servers


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/etc/mailgov/ratelimit.json"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
        servers = build(config)
    except (OSError, ValueError, KeyError, ssl.SSLError) as exc:
        print(f"mailgov-ratelimit: cannot start from {path}: {exc!r}", file=sys.stderr)
        return 2
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    log.info("mode %s, socket %s%s", config.get("mode", "server"), config["unix_socket"],
             f", TLS {config['listen_address']}:{config['listen_port']} for "
             f"{', '.join(config['tls_peers'])}" if len(servers) > 1 else
             (f", server {config['server_host']}:{config['server_port']}"
              if config.get("mode") == "relay" else ""))
    servers[0].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
