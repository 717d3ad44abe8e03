#!/usr/bin/python3
"""Outbound rate limit for authenticated senders: a Postfix policy service (ABUSE-02).

Postfix asks at each RCPT of an authenticated session (check_sasl_access → check_policy_service).
A message counts once, at its first recipient OUTSIDE the local domains. When a user has
already sent `messages` such messages in the last `window_minutes`, the next one is refused,
the account is locked in the directory (pwdAccountLockedTime on the provider, over ldapi as
root = manager) and the administrators get a mail. Counters live in memory: a restart (after
an administrator unlocks the account) starts from zero.

Standard library only, plus the shared ldapi helper for the lock (mailgov_ldapi.py beside this
file, installed by roles/mailgov_base with python3-ldap). The decision logic
(:class:`RateLimiter`) has no I/O so it is unit-tested on its own (tests/unit/test_ratelimit.py).
Configuration: one JSON file (default /etc/mailgov/ratelimit.json), see roles/ratelimit.
"""

from __future__ import annotations

import json
import logging
import socketserver
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from ipaddress import ip_address, ip_network
from typing import Any

log = logging.getLogger("mailgov-ratelimit")


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
    _events: dict[str, deque[float]] = field(default_factory=dict)
    _counted: dict[tuple[str, str], float] = field(default_factory=dict)
    _locked: set[str] = field(default_factory=set)

    def is_local(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.local_domains)

    def reset(self, user: str) -> None:
        """Forget a user's window and lock flag (after an administrator unlocked them)."""
        user = user.lower()
        self._events.pop(user, None)
        self._locked.discard(user)

    def check(self, request: dict[str, str], now: float) -> Decision:
        user = request.get("sasl_username", "").strip().lower()
        recipient = request.get("recipient", "").strip()
        if not user or not recipient or self.is_local(recipient):
            return Decision("DUNNO")
        reject = self.reject_text.format(messages=self.messages,
                                         minutes=round(self.window_s / 60))
        if user in self._locked:
            return Decision(reject, count=len(self._events.get(user, ())))
        events = self._events.setdefault(user, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        # Forget message instances older than the window (bounded memory).
        for key in [k for k, t in self._counted.items() if t <= now - self.window_s]:
            del self._counted[key]
        key = (user, request.get("instance", ""))
        if key[1] and key in self._counted:
            return Decision("DUNNO", count=len(events))  # same message, another outside rcpt
        if len(events) >= self.messages:
            self._locked.add(user)
            return Decision(reject, lock=True, count=len(events) + 1)
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


def ldap_lock(config: dict[str, Any], user: str, when: datetime) -> str:
    """Set pwdAccountLockedTime on the user's entry over ldapi (root = manager). Returns the DN."""
    # Imported late (both beside this file on the host) so the logic imports without them.
    import ldap
    import ldap.filter
    from mailgov_ldapi import connect, message

    conn = connect(config["ldap_uri"])
    try:
        safe = ldap.filter.escape_filter_chars(user)
        found = [dn for dn, _ in conn.search_s(
            config["ldap_base"], ldap.SCOPE_SUBTREE,
            f"(&(objectClass=inetOrgPerson)(mail={safe}))", ["1.1"]) if dn]
        if len(found) != 1:
            raise LookupError(f"{user}: {len(found)} directory entries")
        stamp = when.strftime("%Y%m%d%H%M%SZ")
        conn.modify_s(found[0], [(ldap.MOD_REPLACE, "pwdAccountLockedTime", [stamp.encode()])])
        return found[0]
    except ldap.LDAPError as exc:
        raise RuntimeError(f"{user}: {message(exc)}") from None
    finally:
        conn.unbind_s()


def notify(config: dict[str, Any], user: str, decision: Decision, outcome: str,
           request: dict[str, str]) -> None:
    """Mail the administrators through the local sendmail (signed like any local mail)."""
    msg = EmailMessage()
    msg["From"] = config["notify_from"]
    msg["To"] = ", ".join(config["notify_to"])
    msg["Subject"] = f"[mailgov] outbound rate limit: {user} locked"
    msg.set_content(
        f"The account {user} sent more than {config['messages']} messages to outside "
        f"addresses within {config['window_minutes']} minutes (ABUSE-02).\n\n"
        f"Directory lock: {outcome}\n"
        f"Last attempt: client {request.get('client_address', '?')}, "
        f"sender <{request.get('sender', '')}>, recipient <{request.get('recipient', '')}>, "
        f"service {request.get('service', '?') or '?'}\n\n"
        "Check the account (compromised password? bulk mail?), reset its password, then "
        "remove pwdAccountLockedTime and restart mailgov-ratelimit to clear its counter "
        "(docs/security.md).\n")
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
        if decision.lock:
            user = request.get("sasl_username", "").strip().lower()
            try:
                outcome = "locked " + self.locker(self.config, user, datetime.now(UTC))
            except Exception as exc:  # the refusal stands; the admins must know it failed
                outcome = f"FAILED ({exc})"
            log.warning("rate limit: %s exceeded %s messages in %s min: %s", user,
                        self.config["messages"], self.config["window_minutes"], outcome)
            try:
                self.notifier(self.config, user, decision, outcome, request)
            except Exception as exc:
                log.error("notification for %s failed: %s", user, exc)
        return decision.action


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        peer = ip_address(self.client_address[0])
        if not any(peer in net for net in self.server.allowed):
            log.warning("refused policy client %s", peer)
            return
        lines: list[str] = []
        while True:  # Postfix keeps the connection for several requests
            raw = self.rfile.readline(4096)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                lines.append(line)
                continue
            action = self.server.service.handle(parse_request(lines))
            self.wfile.write(f"action={action}\n\n".encode())
            self.wfile.flush()
            lines = []


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, config: dict[str, Any], service: Service) -> None:
        self.service = service
        self.allowed = [ip_network(n) for n in config["allowed_clients"]]
        super().__init__((config["listen_address"], int(config["listen_port"])), _Handler)


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/etc/mailgov/ratelimit.json"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"mailgov-ratelimit: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    with _Server(config, Service(config)) as server:
        log.info("listening on %s:%s: %s messages / %s min", config["listen_address"],
                 config["listen_port"], config["messages"], config["window_minutes"])
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
