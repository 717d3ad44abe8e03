"""Logs off the host (docs/security.md "Logs off the host", roles/logship): the mail servers'
mail, directory and auth logs reach the backup host over mutual TLS and stay there for
policy.logs_retention_days.

Proof by traffic, not by configuration: a unique line written with `logger` on a mail server is
looked for in the backup host's files; the receiver is attacked with plain TCP, with TLS but no
certificate and with a certificate from another CA, and each refusal's reason is read from the
receiver's own log; retention is the real tmpfiles rule run with the clock moved (faketime).
"""

from __future__ import annotations

import base64
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mailhelpers import client_packages

PORT = 6514  # RFC 5425: syslog over TLS
REMOTE_DIR = "/var/log/remote"
# How long a line may take from logger on the sender to the receiver's file (rsyslog's queue
# retries every 10 s when the connection was lost, e.g. after a restart).
ARRIVAL_S = 60


def _token(tag: str) -> str:
    return f"mailgov-logship-{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def receiver(inventory_groups: Any) -> str:
    return inventory_groups["backup_storage"][0]


def _arrived(host_run: Callable[..., Any], receiver: str, sender_ip: str, token: str) -> bool:
    out = host_run(receiver, f"grep -rlF {shlex.quote(token)} {REMOTE_DIR}/{sender_ip}/")
    return out.rc == 0 and bool(out.stdout.strip())


def _wait_arrived(host_run: Callable[..., Any], receiver: str, sender_ip: str, token: str,
                  timeout: float = ARRIVAL_S) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if _arrived(host_run, receiver, sender_ip, token):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def _receiver_log_since(host_run: Callable[..., Any], receiver: str, since: str) -> str:
    out = host_run(receiver,
                   f"journalctl -u rsyslog --since {shlex.quote(since)} --no-pager -o cat")
    assert out.rc == 0, out.stderr
    return out.stdout


def _now(host_run: Callable[..., Any], host: str) -> str:
    return host_run(host, "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()


@pytest.mark.control("LOG-04", "A line written with logger on each mail server (mail, auth and "
                     "the directory's local4 facilities) arrives in the backup host's file for "
                     "that server's address")
def test_log_line_reaches_backup_host(mail_hosts, host_run, host_address, receiver) -> None:
    for name in mail_hosts:
        ip = host_address(name)
        tokens = {fac: _token(fac.split(".")[0]) for fac in ("mail.info", "authpriv.notice",
                                                              "local4.info")}
        for fac, tok in tokens.items():
            out = host_run(name, f"logger -p {fac} -t mailgov-test {tok}")
            assert out.rc == 0, out.stderr
        missing = [f for f, t in tokens.items()
                   if not _wait_arrived(host_run, receiver, ip, t)]
        assert not missing, f"{name}: lines of {missing} never reached {receiver}:{REMOTE_DIR}/{ip}"
        # Not shipped: a facility outside the selector (user.*) stays on the host. A mail line
        # written after it arrives; the queue keeps order, so a shipped user line would be there.
        other, marker = _token("user"), _token("marker")
        host_run(name, f"logger -p user.info -t mailgov-test {other}; "
                 f"logger -p mail.info -t mailgov-test {marker}")
        assert _wait_arrived(host_run, receiver, ip, marker), marker
        assert not _arrived(host_run, receiver, ip, other), other


@pytest.mark.control("LOG-05", "A line shipped from mail1 survives mail1's log rotation "
                     "(logrotate -f): it is still on the backup host, gone from mail1's current "
                     "mail.log, and lines written after the rotation keep arriving")
def test_shipped_line_survives_rotation(host_run, host_address, receiver, mail_hosts) -> None:
    name = next(iter(mail_hosts))
    ip = host_address(name)
    before = _token("before-rotate")
    assert host_run(name, f"logger -p mail.info -t mailgov-test {before}").rc == 0
    assert _wait_arrived(host_run, receiver, ip, before), f"{before} never arrived"
    # The host's local copy before the rotation (LOG-02 rotates mail.log weekly).
    local = host_run(name, f"grep -c -F {before} /var/log/mail.log")
    assert local.stdout.strip() == "1", local.stdout + local.stderr
    rot = host_run(name, "logrotate -f /etc/logrotate.d/rsyslog")
    assert rot.rc == 0, rot.stderr
    # Rotated away: in mail.log.1 now, not in the current mail.log (made again on the next line).
    gone = host_run(name, f"grep -qF {before} /var/log/mail.log.1 && "
                    f"! grep -qsF {before} /var/log/mail.log")
    assert gone.rc == 0, "mail.log was not rotated"
    after = _token("after-rotate")
    assert host_run(name, f"logger -p mail.info -t mailgov-test {after}").rc == 0
    assert _wait_arrived(host_run, receiver, ip, after), f"{after} never arrived after rotation"
    assert _arrived(host_run, receiver, ip, before), f"{before} lost on the backup host"


# Runs on a mail server: a TLS client speaking syslog (octet-counted, RFC 5425) to the receiver.
# argv: host port token [cert key]. Prints the handshake's outcome; the receiver decides.
_TLS_SEND = r"""
import socket, ssl, sys
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile="/etc/ssl/mailgov/ca.crt")
ctx.check_hostname = False
if len(sys.argv) > 5:
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
msg = f"<14>1 - attacker mailgov-test - - - {token}\n".encode()
try:
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(str(len(msg)).encode() + b" " + msg)
            s.settimeout(5)
            try:
                s.recv(1)
            except (TimeoutError, ssl.SSLError, OSError) as exc:
                print("after-send", type(exc).__name__, exc)
    print("sent")
except (ssl.SSLError, OSError) as exc:
    print("refused", type(exc).__name__, exc)
"""


def _issue_cert(ca_dir: str, cn: str, host_run: Callable[..., Any], host: str,
                tmp_path: Path) -> None:
    """A certificate for `cn` signed by the CA in ca_dir, as /tmp/intruder.crt/.key on host."""
    ca = Path(ca_dir)
    assert (ca / "ca.key").is_file(), f"no CA key in {ca} (the lab's CA is needed)"
    key, csr, crt = tmp_path / "i.key", tmp_path / "i.csr", tmp_path / "i.crt"
    for argv in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", str(key)],
                 ["req", "-new", "-key", str(key), "-subj", f"/CN={cn}",
                  "-addext", f"subjectAltName=DNS:{cn}", "-out", str(csr)],
                 ["x509", "-req", "-in", str(csr), "-CA", str(ca / "ca.crt"), "-CAkey",
                  str(ca / "ca.key"), "-CAserial", str(tmp_path / "ca.srl"), "-CAcreateserial",
                  "-days", "2", "-copy_extensions", "copy", "-out", str(crt)]):
        done = subprocess.run(["openssl", *argv], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    for path, dest in ((crt, "/tmp/intruder.crt"), (key, "/tmp/intruder.key")):
        b64 = base64.b64encode(path.read_bytes()).decode()
        put = host_run(host, f"echo {b64} | base64 -d > {dest} && chmod 600 {dest}")
        assert put.rc == 0, put.stderr


@pytest.mark.control("LOG-06", "The log receiver speaks TLS only and only to the CA's mail "
                     "servers: plain TCP, TLS without a client certificate, a certificate "
                     "from another CA or the CA's for another name are refused (reason in the "
                     "receiver's log), nothing they send is written; a mail server's own "
                     "certificate is heard (positive control)")
def test_receiver_refuses_untrusted_senders(host_run, host_address, receiver, mail_hosts,
                                            host_fqdn, role_vars, tmp_path) -> None:
    name = next(iter(mail_hosts))
    ip, rip = host_address(name), host_address(receiver)
    # The receiver presents the CA's certificate for its own name, TLS 1.2 or later.
    shown = host_run(name, f"echo | openssl s_client -connect {rip}:{PORT} -CAfile "
                     f"/etc/ssl/mailgov/ca.crt -verify_hostname {host_fqdn(receiver)} "
                     "-cert /etc/ssl/mailgov/host.crt -key /etc/ssl/mailgov/host.key 2>&1")
    assert "Verify return code: 0 (ok)" in shown.stdout, shown.stdout[-800:]
    assert re.search(r"New, TLSv1\.[23]|Protocol\s*:\s*TLSv1\.[23]", shown.stdout), (
        shown.stdout[-800:])
    script = host_run(name, f"cat > /tmp/logship-send.py <<'EOF'\n{_TLS_SEND}\nEOF")
    assert script.rc == 0, script.stderr
    # A certificate for the same name from a CA the receiver does not trust.
    other_ca = host_run(name, "cd /tmp && openssl req -x509 -newkey ec -pkeyopt "
                        "ec_paramgen_curve:P-256 -nodes -keyout rogue.key -out rogue.crt "
                        f"-days 2 -subj /CN={host_fqdn(name)} -addext "
                        f"subjectAltName=DNS:{host_fqdn(name)} 2>&1")
    assert other_ca.rc == 0, other_ca.stdout
    # A certificate from the lab's CA for a name that is no mail server (the CA key is the
    # lab's, pki__ca_dir on the controller): signed right, refused for its name.
    domain = host_fqdn(name).split(".", 1)[1]
    _issue_cert(role_vars("pki", name)["pki__ca_dir"], f"intruder.{domain}", host_run, name,
                tmp_path)
    # The receiver's own words for each refusal (rsyslog's GnuTLS driver, x509/name).
    cases = {
        "plain": (f"logger --tcp --octet-count -n {rip} -P {PORT} -t mailgov-test TOKEN",
                  r"(GnuTLS handshake retry returned error|gnutls returned error on handshake): "
                  r"An unexpected TLS packet was received"),
        "nocert": (f"python3 /tmp/logship-send.py {rip} {PORT} TOKEN",
                   r"peer did not provide a certificate, not permitted to talk to it"),
        "rogue-ca": (f"python3 /tmp/logship-send.py {rip} {PORT} TOKEN /tmp/rogue.crt "
                     "/tmp/rogue.key",
                     r"not permitted to talk to peer, certificate invalid: signer not found"),
        "wrong-name": (f"python3 /tmp/logship-send.py {rip} {PORT} TOKEN /tmp/intruder.crt "
                       "/tmp/intruder.key",
                       r"peer name not authorized -  not permitted to talk to it\. "
                       r"Names: DNSname: intruder\."),
    }
    for case, (cmd, reason) in cases.items():
        tok = _token(case)
        since = _now(host_run, receiver)
        sent = host_run(name, cmd.replace("TOKEN", tok))
        deadline = time.monotonic() + 30
        while True:
            log = _receiver_log_since(host_run, receiver, since)
            if re.search(reason, log) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert re.search(reason, log), (case, sent.stdout, log[-1500:])
        # The receiver logs the refusal as it closes the session: nothing of it was written.
        assert not _arrived(host_run, receiver, ip, tok), (case, sent.stdout)
    # Positive control: the same client with the mail server's own certificate is heard, so the
    # refusals above are the certificate's and not the tool's.
    tok = _token("own-cert")
    sent = host_run(name, f"python3 /tmp/logship-send.py {rip} {PORT} {tok} "
                    "/etc/ssl/mailgov/host.crt /etc/ssl/mailgov/host.key")
    assert _wait_arrived(host_run, receiver, ip, tok), sent.stdout
    host_run(name, "rm -f /tmp/logship-send.py /tmp/rogue.* /tmp/intruder.*")


@pytest.mark.control("LOG-07", "The backup host keeps received logs for "
                     "policy.logs_retention_days: its tmpfiles rule, run with the clock moved, "
                     "keeps a file one day before that age and removes it one day after")
def test_received_logs_kept_for_retention(host_run, receiver, policy, client_run) -> None:
    days = int(policy["logs_retention_days"])  # the regulation's number, from the data file
    rule = host_run(receiver, "cat /etc/tmpfiles.d/mailgov-remote-logs.conf")
    assert rule.rc == 0, rule.stderr
    lines = [ln.split() for ln in rule.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    assert [ln[:2] for ln in lines] == [["d", REMOTE_DIR]], rule.stdout
    assert lines[0][5] == f"{days}d", rule.stdout
    timer = host_run(receiver, "systemctl is-active systemd-tmpfiles-clean.timer")
    assert timer.stdout.strip() == "active", timer.stdout
    # The rule itself, on a scratch directory (the real files stay): systemd-tmpfiles ages by
    # the newest of atime/mtime/ctime, so the clock moves instead of the file's times.
    if receiver == "client":
        client_packages(client_run, "faketime")
    else:
        assert host_run(receiver, "command -v faketime").rc == 0, "faketime missing"
    scratch = "/var/tmp/mailgov-logship-age"
    conf = "/run/mailgov-logship-age.conf"
    setup = host_run(receiver, f"rm -rf {scratch}; mkdir -p {scratch}/10.0.0.1 && "
                     f"echo x > {scratch}/10.0.0.1/day.log && "
                     f"sed 's#{REMOTE_DIR}#{scratch}#' "
                     f"/etc/tmpfiles.d/mailgov-remote-logs.conf > {conf}")
    assert setup.rc == 0, setup.stderr
    try:
        for ahead, kept in ((days - 1, True), (days + 1, False)):
            run = host_run(receiver, f"faketime -f +{ahead}d systemd-tmpfiles --clean {conf}; "
                           f"test -e {scratch}/10.0.0.1/day.log")
            assert (run.rc == 0) == kept, (ahead, kept, run.stdout, run.stderr)
    finally:
        host_run(receiver, f"rm -rf {scratch} {conf}")
