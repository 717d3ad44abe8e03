"""TLS everywhere (docs/security.md, TLS-*): Mozilla "intermediate" on every port that carries
a password or mail, no plaintext authentication anywhere.

The handshakes run FROM the client host with its own openssl, against each mail host's
address. Debian's openssl refuses TLS 1.0/1.1 by itself at the default security level, so the
old-protocol probes lower it (`-cipher DEFAULT@SECLEVEL=0`) and the test requires the
SERVER's "protocol version" alert: a refusal by the client alone would prove nothing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import standards

# Port -> how openssl reaches TLS there (None: TLS from the first byte).
TLS_PORTS: dict[int, str | None] = {
    25: "smtp",
    587: "smtp",
    465: None,
    993: None,
    995: None,
    636: None,
    389: "ldap",
}
MAIL_HOSTS = ("mail1", "mail2")
CA_ON_CLIENT = "/etc/ssl/mailgov/ca.crt"  # the pki role's CA, installed on every lab host

# Mozilla intermediate's TLS 1.2 suites: tests/infra/standards.py. Some that must never be
# chosen (TLS-03 offers only these):
WEAK_TLS12 = [
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES256-SHA384",
    "DES-CBC3-SHA",
]


def s_client(client_run: Callable[..., Any], address: str, port: int, *opts: str) -> Any:
    """One handshake from the client host; stdout+stderr together, stdin closed."""
    starttls = TLS_PORTS[port]
    cmd = [
        "openssl",
        "s_client",
        "-connect",
        f"{address}:{port}",
        "-CAfile",
        CA_ON_CLIENT,
        "-verify_return_error",
        *opts,
    ]
    if starttls:
        cmd += ["-starttls", starttls]
    line = "timeout 20 " + shlex.join(cmd) + " </dev/null 2>&1"
    return client_run(line, timeout=60)


def negotiated(out: str) -> tuple[str, str] | None:
    """(protocol, cipher) of a completed handshake, else None."""
    proto = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
    cipher = re.search(r"^\s*Cipher\s*:\s*(\S+)", out, re.M)
    if proto and cipher and cipher.group(1) not in ("0000", "(NONE)"):
        return proto.group(1), cipher.group(1)
    new = re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)", out, re.M)
    if new and new.group(2) != "(NONE)":
        return new.group(1), new.group(2)
    return None


@pytest.mark.control("TLS-01", "TLS 1.0 and 1.1 are refused by the server on every TLS port")
@pytest.mark.parametrize("host", MAIL_HOSTS)
@pytest.mark.parametrize("port", sorted(TLS_PORTS))
@pytest.mark.parametrize("old", ["-tls1", "-tls1_1"])
def test_old_tls_refused_by_server(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host: str,
    port: int,
    old: str,
) -> None:
    out = s_client(
        client_run, host_address(host), port, old, "-cipher", "DEFAULT@SECLEVEL=0", "-msg"
    )
    text = out.stdout + out.stderr
    assert negotiated(text) is None, f"{host}:{port} accepted {old}:\n{text[-800:]}"
    # Our openssl really offered the old protocol (it sent a ClientHello for it) ...
    assert "no protocols available" not in text, f"the client refused by itself:\n{text[-800:]}"
    version = {"-tls1": "TLS 1.0", "-tls1_1": "TLS 1.1"}[old]
    assert re.search(rf">>> {version}, Handshake \[length [0-9a-f]+\], ClientHello", text), (
        f"no {version} ClientHello was sent:\n{text[-800:]}"
    )
    # ... and the server said no: OpenSSL servers send alert 70 (protocol_version), slapd's
    # GnuTLS closes the connection without a ServerHello.
    assert "ServerHello" not in text.split("ClientHello", 1)[1], text[-800:]
    assert re.search(
        r"alert protocol version|alert number 70|unexpected eof while reading|"
        r"wrong version number",
        text,
    ), f"{host}:{port} {old}: no sign that the server refused the protocol:\n{text[-800:]}"


@pytest.mark.control("TLS-02", "TLS 1.2 and 1.3 are accepted, with a certificate the CA verifies")
@pytest.mark.parametrize("host", MAIL_HOSTS)
@pytest.mark.parametrize("port", sorted(TLS_PORTS))
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_modern_tls_accepted(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host: str,
    port: int,
    version: str,
) -> None:
    out = s_client(client_run, host_address(host), port, version)
    text = out.stdout + out.stderr
    got = negotiated(text)
    assert got is not None, f"{host}:{port} {version} failed:\n{text[-800:]}"
    assert got[0] == {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[version], got
    assert "Verify return code: 0 (ok)" in text, text[-800:]
    if version == "-tls1_2":
        assert got[1] in standards.TLS12_CIPHERS, (
            f"{host}:{port} chose {got[1]}, not Mozilla intermediate")


@pytest.mark.control("TLS-03", "TLS 1.2 suites outside Mozilla intermediate are refused")
@pytest.mark.parametrize("host", MAIL_HOSTS)
@pytest.mark.parametrize("port", sorted(TLS_PORTS))
def test_weak_ciphers_refused(
    client_run: Callable[..., Any], host_address: Callable[[str], str], host: str, port: int
) -> None:
    # Offer ONLY weak suites (CBC, RSA key exchange, 3DES): a handshake means one was accepted.
    out = s_client(
        client_run,
        host_address(host),
        port,
        "-tls1_2",
        "-cipher",
        ":".join(WEAK_TLS12) + "@SECLEVEL=0",
    )
    text = out.stdout + out.stderr
    assert negotiated(text) is None, f"{host}:{port} accepted a weak suite:\n{text[-800:]}"
    assert "no ciphers available" not in text, f"client offered nothing:\n{text[-600:]}"
    # The reason: the server refused the ClientHello - Postfix with a handshake_failure
    # alert (RFC 8446 §6.2, alert 40); Dovecot and slapd (GnuTLS) close the connection
    # before any ServerHello (no certificate seen; over StartTLS only the protocol's own
    # "go ahead" was read). Not a refused connection or a timeout.
    alert = re.search(r"alert handshake failure|SSL alert number 40", text)
    closed = "unexpected eof while reading" in text and "no peer certificate available" in text
    assert "CONNECTED(" in text and (alert or closed), \
        f"{host}:{port} refused for another reason:\n{text[-800:]}"
    # Positive control: the same port completes a handshake with a Mozilla intermediate suite.
    good = s_client(client_run, host_address(host), port, "-tls1_2", "-cipher",
                    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
    assert negotiated(good.stdout + good.stderr) is not None, \
        f"{host}:{port} refused a good suite too:\n{(good.stdout + good.stderr)[-800:]}"


def expanded_tls12(host: Any, cipher_string: str) -> list[str]:
    """The TLS 1.2 suites an OpenSSL cipher string really enables, by the host's own openssl
    (a string such as "HIGH" is judged by what it expands to, not by its spelling)."""
    out = host.run(f"openssl ciphers -s -tls1_2 -ciphersuites '' {shlex.quote(cipher_string)}")
    assert out.rc == 0, out.stderr
    return out.stdout.strip().split(":")


def floors_met(problems: list[str]) -> None:
    assert not problems, "weaker than the floor (tests/infra/standards.py):\n" + "\n".join(
        problems)


@pytest.mark.control("TLS-04", "Server TLS settings meet Mozilla intermediate (protocols, "
                     "ciphers, client's preference, DH size); plaintext auth off")
@pytest.mark.parametrize("host", MAIL_HOSTS)
def test_server_tls_settings(infra_host: Callable[[str], Any], host: str) -> None:
    h = infra_host(host)
    problems: list[str] = []
    conf = h.run(
        "postconf -h tls_preempt_cipherlist smtpd_tls_protocols "
        "smtpd_tls_mandatory_protocols smtpd_tls_ciphers smtpd_tls_mandatory_ciphers"
    )
    assert conf.rc == 0, conf.stderr
    preempt, protos, mprotos, level, mlevel = conf.stdout.splitlines()
    if (preempt == "yes") != standards.TLS_PREFER_SERVER_CIPHERS:
        problems.append(f"postfix tls_preempt_cipherlist = {preempt}")
    for name, value in (("smtpd_tls_protocols", protos),
                        ("smtpd_tls_mandatory_protocols", mprotos)):
        problems += [f"postfix {name}: {p}" for p in
                     standards.min_protocol_violations(standards.postfix_min_protocol(value))]
    # The cipher list in force is the one of the grade each setting names.
    for grade in sorted({level, mlevel}):
        clist = h.run(f"postconf -h tls_{grade}_cipherlist")
        assert clist.rc == 0, clist.stderr
        problems += [f"postfix ({grade}): {p}" for p in
                     standards.tls12_cipher_violations(expanded_tls12(h, clist.stdout.strip()))]
    dconf = h.run(
        "doveconf -h ssl_prefer_server_ciphers ssl_min_protocol ssl_cipher_list "
        "disable_plaintext_auth ssl"
    )
    assert dconf.rc == 0, dconf.stderr
    prefer, dmin, dciphers, plaintext, ssl = dconf.stdout.splitlines()
    if (prefer == "yes") != standards.TLS_PREFER_SERVER_CIPHERS:
        problems.append(f"dovecot ssl_prefer_server_ciphers = {prefer}")
    problems += [f"dovecot: {p}" for p in standards.min_protocol_violations(dmin)]
    problems += [f"dovecot: {p}" for p in
                 standards.tls12_cipher_violations(expanded_tls12(h, dciphers))]
    # No password ever crosses without TLS (docs/security.md TLS-04).
    assert (plaintext, ssl) == ("yes", "required"), (plaintext, ssl)
    dh = h.run("doveconf -h ssl_dh | sed 's/^<//' | xargs openssl pkeyparam -noout -text -in "
               "| head -n1")
    bits = re.search(r"\((\d+) bit\)", dh.stdout)
    assert bits, dh.stdout + dh.stderr
    problems += [f"dovecot ssl_dh: {p}" for p in standards.dh_violations(int(bits.group(1)))]
    ldap = h.run(
        "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b cn=config -s base -o ldif-wrap=no "
        "olcTLSProtocolMin olcTLSCipherSuite olcSecurity"
    )
    assert ldap.rc == 0, ldap.stderr
    attrs = dict(line.split(": ", 1) for line in ldap.stdout.splitlines() if ": " in line)
    problems += [f"slapd: {p}" for p in
                 standards.ldap_protocol_min_violations(attrs.get("olcTLSProtocolMin", ""))]
    problems += [f"slapd olcTLSCipherSuite: {p}" for p in
                 standards.gnutls_priority_violations(attrs.get("olcTLSCipherSuite", ""))]
    ssf = re.search(r"\bsimple_bind=(\d+)", attrs.get("olcSecurity", ""))
    if not ssf or int(ssf.group(1)) < standards.LDAP_SIMPLE_BIND_MIN_SSF:
        problems.append(f"slapd olcSecurity {attrs.get('olcSecurity')!r}: simple_bind below "
                        f"{standards.LDAP_SIMPLE_BIND_MIN_SSF}")
    floors_met(problems)


@pytest.mark.control("TLS-04", "Server TLS settings meet Mozilla intermediate (protocols, "
                     "ciphers, client's preference, DH size); plaintext auth off")
@pytest.mark.parametrize("host", MAIL_HOSTS)
def test_server_key_exchange_groups(
    client_run: Callable[..., Any], host_address: Callable[[str], str], host: str
) -> None:
    """Mozilla's groups are accepted, none outside them: each probe offers one group only."""
    address = host_address(host)
    groups = sorted(standards.TLS_GROUPS) + list(standards.TLS_GROUPS_OUTSIDE)
    accepted: dict[str, list[int]] = {}
    for port in sorted(TLS_PORTS):
        # One client call per port: a handshake per group, each output after a marker line.
        lines = []
        for group in groups:
            cmd = ["openssl", "s_client", "-connect", f"{address}:{port}", "-CAfile",
                   CA_ON_CLIENT, "-groups", group]
            if TLS_PORTS[port]:
                cmd += ["-starttls", str(TLS_PORTS[port])]
            lines.append(f"echo @@{group}; timeout 20 {shlex.join(cmd)} </dev/null 2>&1")
        out = client_run("; ".join(lines), timeout=300)
        for chunk in out.stdout.split("@@")[1:]:
            group, _, text = chunk.partition("\n")
            if negotiated(text) is not None:
                accepted.setdefault(group.strip(), []).append(port)
    for group in standards.TLS_GROUPS:
        assert accepted.get(group) == sorted(TLS_PORTS), (group, accepted)
    floors_met([f"{host}: {p} (ports {accepted[g]})" for g in sorted(accepted)
                for p in standards.group_violations([g])])


@pytest.mark.control("TLS-05", "Certificates are the pki role's files (inventory variables) "
                     "and meet Mozilla intermediate's certificate floor; the key is private")
@pytest.mark.parametrize("host", MAIL_HOSTS)
def test_certificates_from_pki(
    infra_host: Callable[[str], Any], role_vars: Callable[..., dict[str, Any]], host: str
) -> None:
    h = infra_host(host)
    # Paths are deployment facts: the inventory's (through the roles' variables).
    pf = role_vars("postfix", host)
    dv = role_vars("dovecot", host)
    ol = role_vars("openldap", host)
    conf = h.run("postconf -h smtpd_tls_cert_file smtpd_tls_key_file")
    assert conf.stdout.splitlines() == [pf["postfix__tls_cert_file"], pf["postfix__tls_key_file"]]
    dconf = h.run("doveconf -h ssl_cert ssl_key 2>/dev/null; doveconf -hP ssl_key >/dev/null")
    # doveconf shows "<path" for file references (-P would print the key: only checked to work).
    assert dconf.stdout.splitlines()[:1] == [f"<{dv['dovecot__tls_cert_file']}"]
    ldap = h.run(
        "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b cn=config -s base olcTLSCertificateFile"
    )
    assert f"olcTLSCertificateFile: {ol['openldap__tls_cert_file']}" in ldap.stdout
    key = h.file(pf["postfix__tls_key_file"])
    assert key.exists and key.user == "root" and not key.mode & 0o007, (
        "private key is world-readable"
    )
    # The certificate itself, against the standard (not the pki role's settings).
    cert = h.run(f"openssl x509 -in {shlex.quote(pf['postfix__tls_cert_file'])} -noout "
                 "-text -dates")
    assert cert.rc == 0, cert.stderr
    floors_met(standards.certificate_violations(*certificate_facts(cert.stdout)))


def certificate_facts(text: str) -> tuple[str, int, str | None, str, float]:
    """(key type, bits, EC curve, signature, lifetime in days) of `openssl x509 -text -dates`."""
    key_alg = re.search(r"Public Key Algorithm:\s*(\S+)", text)
    bits = re.search(r"Public-Key:\s*\((\d+) bit\)", text)
    curve = re.search(r"NIST CURVE:\s*(\S+)|ASN1 OID:\s*(\S+)", text)
    sig = re.search(r"Signature Algorithm:\s*(\S+)", text)
    start = re.search(r"^notBefore=(.+)$", text, re.M)
    end = re.search(r"^notAfter=(.+)$", text, re.M)
    assert key_alg and bits and sig and start and end, text[:1500]
    kind = {"rsaEncryption": "RSA", "id-ecPublicKey": "EC"}.get(key_alg.group(1),
                                                               key_alg.group(1))
    fmt = "%b %d %H:%M:%S %Y %Z"
    days = (datetime.strptime(" ".join(end.group(1).split()), fmt)
            - datetime.strptime(" ".join(start.group(1).split()), fmt)).total_seconds() / 86400
    name = None
    if curve:
        name = curve.group(2) or {"P-256": "prime256v1", "P-384": "secp384r1"}.get(
            curve.group(1), curve.group(1))
    return kind, int(bits.group(1)), name, sig.group(1), days


@pytest.mark.control("TLS-08", "Every served certificate has 30 days or more left and lives at "
                     "most 366 days (each TLS listener, and the HTTPS sites of the primary MX)")
@pytest.mark.parametrize("host", MAIL_HOSTS)
def test_served_certificates_not_expiring(
    client_run: Callable[..., Any], host_address: Callable[[str], str],
    inventory_groups: Any, host: str,
) -> None:
    ports: dict[int, str | None] = dict(TLS_PORTS)
    if host in inventory_groups["mx_primary"]:
        ports[443] = None  # the MTA-STS site and the password page (nginx)
    # The dates are the client's clock against what each listener sends: the certificate a
    # client sees, whichever file the service really loaded.
    now = datetime.strptime(client_run("date -u '+%Y-%m-%d %H:%M:%S'").stdout.strip(),
                            "%Y-%m-%d %H:%M:%S")
    problems = []
    for port, starttls in sorted(ports.items()):
        cmd = ["openssl", "s_client", "-connect", f"{host_address(host)}:{port}",
               "-servername", "mta-sts.monre.gov.vn" if port == 443 else host]
        if starttls:
            cmd += ["-starttls", starttls]
        out = client_run("timeout 20 " + shlex.join(cmd) + " </dev/null 2>/dev/null | "
                         "openssl x509 -noout -startdate -enddate", timeout=60)
        start = re.search(r"^notBefore=(.+)$", out.stdout, re.M)
        end = re.search(r"^notAfter=(.+)$", out.stdout, re.M)
        assert start and end, f"{host}:{port}: no certificate served: {out.stdout}{out.stderr}"
        fmt = "%b %d %H:%M:%S %Y %Z"
        dates = [datetime.strptime(" ".join(m.group(1).split()), fmt) for m in (start, end)]
        problems += [f"{host}:{port}: {p}"
                     for p in standards.served_certificate_violations(*dates, now)]
    floors_met(problems)


@pytest.mark.control("TLS-06", "No plaintext IMAP/POP3 listener (143, 110 closed)")
@pytest.mark.parametrize("host", MAIL_HOSTS)
@pytest.mark.parametrize("port", [143, 110])
def test_plaintext_mail_ports_closed(
    client_run: Callable[..., Any], host_address: Callable[[str], str], host: str, port: int
) -> None:
    out = client_run(f"nc -z -w 5 {host_address(host)} {port}; echo rc=$?")
    assert "rc=0" not in out.stdout, f"{host}:{port} accepts connections"
    assert "rc=" in out.stdout, out.stderr


SMTP_PROBE = r"""
import smtplib, sys, base64
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo("probe.client.lab")
print("STARTTLS" if s.has_extn("starttls") else "NO-STARTTLS")
print("AUTH-OFFERED" if s.has_extn("auth") else "NO-AUTH")
token = base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
code, msg = s.docmd("AUTH", "PLAIN " + token)
print(f"AUTH-REPLY {code} {msg.decode(errors='replace')}")
"""


@pytest.mark.control("TLS-07", "SMTP: STARTTLS offered, no AUTH before it (25, 587)")
@pytest.mark.parametrize("host", MAIL_HOSTS)
@pytest.mark.parametrize("port", [25, 587])
def test_no_auth_before_starttls(
    client_run: Callable[..., Any], host_address: Callable[[str], str], host: str, port: int
) -> None:
    # A made-up account: what matters is that AUTH is refused before any password check.
    out = client_run(
        [
            "python3",
            "-c",
            SMTP_PROBE,
            host_address(host),
            str(port),
            "nobody@monre.gov.vn",
            "Not-a-Secret-1",
        ]
    )
    lines = out.stdout.splitlines()
    assert "STARTTLS" in lines, out.stdout + out.stderr
    assert "NO-AUTH" in lines, f"{host}:{port} offers AUTH in clear:\n{out.stdout}"
    reply = next(line for line in lines if line.startswith("AUTH-REPLY"))
    code = int(reply.split()[1])
    # 530 "Must issue a STARTTLS command first" (587) / 503 "AUTH not enabled" (25).
    assert code in (503, 530), f"{host}:{port} answered AUTH in clear with {reply}"
