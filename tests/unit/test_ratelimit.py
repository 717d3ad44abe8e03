"""The outbound rate limit's decision logic (roles/ratelimit, mailgov_ratelimit.py)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import pytest

_PATH = (Path(__file__).resolve().parents[2]
         / "roles/ratelimit/files/usr/local/lib/mailgov/mailgov_ratelimit.py")
_spec = importlib.util.spec_from_file_location("mailgov_ratelimit", _PATH)
assert _spec and _spec.loader
rl = importlib.util.module_from_spec(_spec)
sys.modules["mailgov_ratelimit"] = rl
_spec.loader.exec_module(rl)

DOMAIN = "monre.gov.vn"


def req(user: str, rcpt: str, instance: str) -> dict[str, str]:
    return {"request": "smtpd_access_policy", "protocol_state": "RCPT",
            "sasl_username": user, "recipient": rcpt, "instance": instance,
            "client_address": "10.0.0.5", "sender": user}


def limiter(messages: int = 3, minutes: float = 10) -> Any:
    return rl.RateLimiter(messages, minutes * 60, (DOMAIN,))


def test_allows_n_outside_messages_then_refuses_and_locks_once() -> None:
    lim = limiter(3)
    for i in range(3):
        d = lim.check(req("a@monre.gov.vn", "x@example.org", f"m{i}"), now=100 + i)
        assert d.action == "DUNNO" and not d.lock and d.count == i + 1
    d = lim.check(req("a@monre.gov.vn", "x@example.org", "m3"), now=104)
    assert d.action.startswith("REJECT 5.7.1") and d.lock and d.count == 4
    assert "3 messages" in d.action and "10 minutes" in d.action
    # Locked: further attempts are refused without locking again.
    d = lim.check(req("a@monre.gov.vn", "y@example.org", "m4"), now=105)
    assert d.action.startswith("REJECT") and not d.lock


def test_local_and_unauthenticated_are_not_counted() -> None:
    lim = limiter(1)
    for i in range(5):
        assert lim.check(req("a@monre.gov.vn", f"u{i}@monre.gov.vn", f"m{i}"), i).action == "DUNNO"
        sub = req("a@monre.gov.vn", f"u{i}@sub.MONRE.gov.vn", f"n{i}")
        assert lim.check(sub, i).action == "DUNNO"
        assert lim.check(req("", "x@example.org", f"p{i}"), i).action == "DUNNO"
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "q"), 10).count == 1
    # A look-alike domain is outside.
    assert lim.check(req("a@monre.gov.vn", "x@evilmonre.gov.vn", "r"), 11).lock


def test_one_message_many_outside_recipients_counts_once() -> None:
    lim = limiter(2)
    for rcpt in ("x@example.org", "y@example.org", "z@example.net"):
        assert lim.check(req("a@monre.gov.vn", rcpt, "same"), 1).action == "DUNNO"
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "second"), 2).count == 2
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "third"), 3).lock


def test_window_slides_and_users_are_separate() -> None:
    lim = limiter(2, minutes=1)
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "1"), 0).count == 1
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "2"), 30).count == 2
    assert lim.check(req("B@monre.gov.vn", "x@example.org", "3"), 31).count == 1  # other user
    # At t=60 the first message left the window: room for one more.
    d = lim.check(req("a@monre.gov.vn", "x@example.org", "4"), 60)
    assert d.action == "DUNNO" and d.count == 2
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "5"), 61).lock


def test_reset_forgets_window_and_lock() -> None:
    lim = limiter(1)
    lim.check(req("a@monre.gov.vn", "x@example.org", "1"), 0)
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "2"), 1).lock
    lim.reset("A@monre.gov.vn")
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "3"), 2).action == "DUNNO"


def test_parse_request() -> None:
    r = rl.parse_request(["request=smtpd_access_policy", "sasl_username=a@b",
                          "recipient=x=y@z", "junk"])
    assert r == {"request": "smtpd_access_policy", "sasl_username": "a@b", "recipient": "x=y@z"}


@pytest.mark.parametrize("lock_fails", [False, True])
def test_service_locks_and_notifies_once(lock_fails: bool) -> None:
    config = {"messages": 1, "window_minutes": 5, "local_domains": [DOMAIN]}
    locked: list[str] = []
    notes: list[tuple[str, str]] = []

    def locker(_cfg: dict[str, Any], user: str, _when: Any) -> str:
        if lock_fails:
            raise RuntimeError("slapd down")
        locked.append(user)
        return f"mail={user},ou=people"

    def notifier(_cfg: dict[str, Any], user: str, _d: Any, outcome: str, _r: Any,
                 locked: bool = True) -> None:
        notes.append((user, outcome))

    svc = rl.Service(config, locker=locker, notifier=notifier)
    assert svc.handle(req("A@monre.gov.vn", "x@example.org", "1"), now=0) == "DUNNO"
    assert svc.handle(req("a@monre.gov.vn", "x@example.org", "2"), now=1).startswith("REJECT")
    assert svc.handle(req("a@monre.gov.vn", "x@example.org", "3"), now=2).startswith("REJECT")
    assert locked == ([] if lock_fails else ["a@monre.gov.vn"])
    assert len(notes) == 1 and notes[0][0] == "a@monre.gov.vn"
    assert notes[0][1].startswith("FAILED (slapd down)" if lock_fails else "locked mail=")


def test_administrator_is_refused_over_the_limit_but_never_locked() -> None:
    """ABUSE-06: the locker refuses (Protected); the service throttles and tells, once."""
    config = {"messages": 2, "window_minutes": 1, "local_domains": [DOMAIN]}
    notes: list[tuple[str, str, bool]] = []

    def locker(_cfg: dict[str, Any], user: str, _when: Any) -> str:
        raise rl.Protected(f"uid=x is an administrator ({user})")

    def notifier(_cfg: dict[str, Any], user: str, _d: Any, outcome: str, _r: Any,
                 locked: bool = True) -> None:
        notes.append((user, outcome, locked))

    svc = rl.Service(config, locker=locker, notifier=notifier)
    admin = "quantri@monre.gov.vn"
    assert svc.handle(req(admin, "x@example.org", "1"), now=0) == "DUNNO"
    assert svc.handle(req(admin, "x@example.org", "2"), now=1) == "DUNNO"
    third = svc.handle(req(admin, "x@example.org", "3"), now=2)
    assert third.startswith("REJECT 5.7.1") and "try again later" in third
    assert "locked" not in third
    assert svc.handle(req(admin, "x@example.org", "4"), now=3).endswith("try again later")
    assert notes == [(admin, "NOT locked: uid=x is an administrator (quantri@monre.gov.vn)",
                      False)]
    # Back under the limit (the window slid past the first two): accepted again, and a new
    # crossing is news again.
    assert svc.handle(req(admin, "x@example.org", "5"), now=61.5) == "DUNNO"
    assert svc.handle(req(admin, "x@example.org", "6"), now=61.6) == "DUNNO"
    assert svc.handle(req(admin, "x@example.org", "7"), now=61.7).startswith("REJECT")
    assert len(notes) == 2


def test_read_request_stops_at_garbage() -> None:
    import io

    good = io.BytesIO(b"request=smtpd_access_policy\nsasl_username=a\n\nrest")
    assert rl.read_request(good) == ["request=smtpd_access_policy", "sasl_username=a"]
    assert rl.read_request(io.BytesIO(b"no newline at the end")) is None
    assert rl.read_request(io.BytesIO(b"x" * 5000 + b"\n\n")) is None  # over MAX_LINE
    assert rl.read_request(io.BytesIO(b"a=b\n" * 200 + b"\n")) is None  # not Postfix


def test_peer_names_from_a_verified_certificate() -> None:
    cert = {"subject": ((("commonName", "mail2.monre.gov.vn"),),),
            "subjectAltName": (("DNS", "Mail2.monre.gov.vn"), ("DNS", "mail2"),
                               ("IP Address", "10.210.0.12"))}
    assert rl.peer_names(cert) == {"mail2.monre.gov.vn", "mail2"}
    assert rl.peer_names({"subject": ((("commonName", "Other"),),)}) == {"other"}
    assert rl.peer_names({}) == set()


def test_socket_is_postfix_only(tmp_path: Any) -> None:
    """The unix socket is created 0600 and owned by the configured account (ABUSE-04)."""
    import grp
    import os
    import pwd
    import stat

    me = pwd.getpwuid(os.getuid()).pw_name
    if grp.getgrgid(os.getgid()).gr_name != me:
        pytest.skip("needs a user whose group has its name")
    path = tmp_path / "policy.sock"
    path.write_text("stale")  # a leftover of a crash is replaced
    srv = rl._UnixServer({"unix_socket": str(path), "unix_owner": me}, rl._PolicyHandler)
    try:
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.getuid()
    finally:
        srv.server_close()


def _openssl(*args: str, cwd: Any) -> None:
    import subprocess

    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _pki(tmp: Any) -> dict[str, str]:
    """A CA and leaf certificates for mail1, mail2 and an intruder (same CA, other name)."""
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test CA",
             cwd=tmp)
    for name in ("mail1.monre.gov.vn", "mail2.monre.gov.vn", "client.lab"):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                 "-addext", f"subjectAltName=DNS:{name}", cwd=tmp)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-copy_extensions", "copy",
                 "-out", f"{name}.crt", cwd=tmp)
    return {"tls_ca": str(tmp / "ca.crt")}


def _ask(path: str, request: str) -> str:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(request.encode())
        got = b""
        while not got.endswith(b"\n\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    return got.decode()


def test_relay_over_tls_reaches_the_count_and_strangers_do_not(
        tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    """ABUSE-04/05 without a lab: a relay's request crosses TLS with its certificate and is
    counted by the server; a client without a certificate, or with one of the CA naming
    another host, gets no answer."""
    import grp
    import os
    import pwd
    import socket
    import ssl
    import threading

    me = pwd.getpwuid(os.getuid()).pw_name
    if grp.getgrgid(os.getgid()).gr_name != me:
        pytest.skip("needs a user whose group has its name")
    ca = _pki(tmp_path)

    def leaf(name: str) -> dict[str, str]:
        return {"tls_cert": str(tmp_path / f"{name}.crt"),
                "tls_key": str(tmp_path / f"{name}.key"), **ca}

    server_cfg = {"mode": "server", "messages": 1, "window_minutes": 10,
                  "local_domains": [DOMAIN], "unix_socket": str(tmp_path / "server.sock"),
                  "unix_owner": me, "listen_address": "127.0.0.1", "listen_port": 0,
                  "tls_peers": ["mail2.monre.gov.vn"], "notify_to": ["postmaster@x"],
                  "notify_from": "postmaster@x", **leaf("mail1.monre.gov.vn")}
    locked: list[str] = []
    servers = rl.build(server_cfg)
    svc = servers[0].service
    svc.locker = lambda _c, user, _w: locked.append(user) or "uid=x"
    svc.notifier = lambda *a, **k: None
    port = servers[1].server_address[1]
    relay_cfg = {"mode": "relay", "unix_socket": str(tmp_path / "relay.sock"), "unix_owner": me,
                 "server_host": "127.0.0.1", "server_name": "mail1.monre.gov.vn",
                 "server_port": port, **leaf("mail2.monre.gov.vn")}
    relays = rl.build(relay_cfg)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers + relays]
    for t in threads:
        t.start()
    try:
        request = ("request=smtpd_access_policy\nsasl_username=a@monre.gov.vn\n"
                   "recipient=x@example.org\ninstance={}\n\n")
        assert _ask(relay_cfg["unix_socket"], request.format("1")) == "action=DUNNO\n\n"
        # The second message, through the relay, crosses the server's count of 1.
        assert _ask(relay_cfg["unix_socket"], request.format("2")).startswith(
            "action=REJECT 5.7.1")
        assert locked == ["a@monre.gov.vn"]

        def stranger(cert: str | None) -> str:
            ctx = ssl.create_default_context(cafile=ca["tls_ca"])
            if cert:
                ctx.load_cert_chain(str(tmp_path / f"{cert}.crt"), str(tmp_path / f"{cert}.key"))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                        ctx.wrap_socket(raw, server_hostname="mail1.monre.gov.vn") as tls:
                    tls.sendall(request.format("3").encode())
                    return tls.recv(4096).decode() or "closed"
            except (ssl.SSLError, OSError) as exc:
                return f"refused: {exc}"

        no_cert = stranger(None)
        # TLS 1.3 sends the server's alert after the client's Finished: the client reads it
        # ("certificate required") or, on a loaded machine, sees the connection closed first
        # (EOF). The reason is the server's either way, and it logs it.
        assert no_cert.startswith("refused") and ("certificate required" in no_cert
                                                  or "EOF occurred" in no_cert), no_cert
        # The server thread logs the refusal after it closed the connection: the client can
        # be faster than that log call on a loaded machine, so wait for it (bounded).
        deadline = time.monotonic() + 10
        while ("peer did not return a certificate" not in caplog.text
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert "peer did not return a certificate" in caplog.text, caplog.text
        assert stranger("client.lab") == "closed"  # the CA's, but not a peer's name
    finally:
        for s in servers + relays:
            s.shutdown()
            s.server_close()
