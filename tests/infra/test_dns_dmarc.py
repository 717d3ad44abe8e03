"""Mail authentication through real DNS (docs/security.md "Mail authentication through real
DNS", roles/dns, playbooks/dns.yml): the lab's DNS serves exactly the records `mailgov dns`
prints, signed; the lab hosts resolve through it; a receiving MX applies the published DMARC
policy to forged and broken mail, with the reason in the SMTP reply, and records the aggregate
report data.

Expected values: the records are `mailgov dns`'s own output for the inventory's MX hosts, MTA-STS
mode and DMARC policy (what an admin publishes); the refusal is RFC 7489's p=reject, answered
with 5.7.1 (RFC 7372 "message rejected by the domain's DMARC policy") by OpenDMARC.
"""

from __future__ import annotations

import base64
import re
import shlex
import time
from collections.abc import Callable
from typing import Any

import pytest
from mailhelpers import (
    active_users,
    client_packages,
    fetch_delivered,
    known_passwords,
    swaks,
    token,
)
from test_mailauth import dkim_fetch_dir, inventory_mta_sts_mode, inventory_mx, mailgov_dns_json

DNS_TOOLS = "bind9-dnsutils"  # dig, delv: a resolver library independent of Knot


def inventory_dmarc_policy(inventory: Any) -> str:
    """The site's published DMARC policy (mailgov_dmarc_policy; `mailgov dns`'s default)."""
    pols = {str(v.get("mailgov_dmarc_policy", "quarantine")) for v in inventory.hostvars.values()}
    assert len(pols) == 1, f"one DMARC policy for the site, not {pols}"
    return pols.pop()


@pytest.fixture(scope="module")
def dns_server(inventory_groups: Any, host_address: Callable[[str], str]) -> str:
    return host_address(inventory_groups["dns_authoritative"][0])


@pytest.fixture(scope="module")
def published(role_vars, inventory) -> dict[str, Any]:
    """What `mailgov dns` prints for this site: the zone the lab must serve."""
    mx = [a for i, h in enumerate(inventory_mx(inventory)) for a in ("--mx", f"{h}:{10 * (i + 1)}")]
    return mailgov_dns_json(dkim_fetch_dir(role_vars),
                            [*mx, "--mta-sts-mode", inventory_mta_sts_mode(inventory),
                             "--dmarc-policy", inventory_dmarc_policy(inventory)])


@pytest.fixture(scope="module")
def dig(client_run: Callable[..., Any], dns_server: str) -> Callable[..., list[str]]:
    """dig on the client at the lab's DNS: the answer's rdata of type `rtype`; with
    dnssec=True the RRSIG records that came with it instead."""
    client_packages(client_run, DNS_TOOLS)

    def query(name: str, rtype: str, dnssec: bool = False) -> list[str]:
        out = client_run(["dig", "+norecurse", "+noall", "+answer", "+time=5", "+tries=2",
                          *(["+dnssec"] if dnssec else []), f"@{dns_server}", name, rtype])
        assert out.rc == 0, out.stdout + out.stderr
        want = "RRSIG" if dnssec else rtype
        return [ln.split(None, 4)[4] for ln in out.stdout.splitlines()
                if ln.strip() and ln.split(None, 4)[3] == want]
    return query


def _txt(rdata: str) -> str:
    """A TXT rdata as dig prints it ("a" "b") joined into the text."""
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', rdata))


@pytest.mark.control("DNS-01", "The lab's DNS serves exactly the records mailgov dns prints (MX, "
                     "SPF, every DKIM key, DMARC, MTA-STS, TLS-RPT) for the inventory's MX hosts, "
                     "MTA-STS mode and DMARC policy")
def test_zone_serves_mailgov_dns_records(published, dig) -> None:
    wanted: dict[tuple[str, str], set[str]] = {}
    for r in published["records"]:
        wanted.setdefault((r["name"], r["type"]), set()).add(r["value"])
    assert any(t == "TXT" and "._domainkey." in n for n, t in wanted), "no DKIM record to serve"
    for (name, rtype), values in sorted(wanted.items()):
        got = dig(name, rtype)
        served = {_txt(v) for v in got} if rtype == "TXT" else set(got)
        if rtype == "TXT" and name == published["domain"] + ".":
            served = {v for v in served if v.startswith("v=spf1")}
        assert served == values, (name, rtype, served, values)


@pytest.mark.control("DNS-02", "The zone is DNSSEC-signed: every mail record carries an RRSIG, "
                     "and delv (BIND's validator) fully validates the DMARC record from the "
                     "zone's key-signing key; a wrong anchor does not validate")
def test_zone_is_signed(published, dig, client_run, dns_server) -> None:
    domain = published["domain"]
    for name, rtype in sorted({(r["name"], r["type"]) for r in published["records"]}):
        sigs = [sig for sig in dig(name, rtype, dnssec=True) if sig.split()[0] == rtype]
        assert sigs, f"no RRSIG over {name} {rtype}"
    ksk = [k for k in dig(f"{domain}.", "DNSKEY") if k.split()[0] == "257"]
    assert ksk, "no key-signing key (flags 257)"
    flags, proto, alg, key = ksk[0].split(None, 3)
    anchor = (f'trust-anchors {{ {domain}. static-key {flags} {proto} {alg} '
              f'"{key.replace(" ", "")}"; }};\n')
    bad_key = "A" * len(key.replace(" ", ""))
    bad = anchor.replace(key.replace(" ", ""), bad_key)
    for path, text in (("/tmp/dns-anchor.conf", anchor), ("/tmp/dns-bad-anchor.conf", bad)):
        b64 = base64.b64encode(text.encode()).decode()
        assert client_run(f"echo {b64} | base64 -d > {path}").rc == 0
    ok = client_run(["delv", f"@{dns_server}", "-a", "/tmp/dns-anchor.conf", "+root=" + domain,
                     f"_dmarc.{domain}", "TXT"])
    assert "; fully validated" in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    wrong = client_run(["delv", f"@{dns_server}", "-a", "/tmp/dns-bad-anchor.conf",
                        "+root=" + domain, f"_dmarc.{domain}", "TXT"])
    assert "; fully validated" not in wrong.stdout + wrong.stderr, wrong.stdout


@pytest.mark.control("DNS-03", "Every lab host resolves through the lab's DNS: a name only the "
                     "zone holds (its name server) resolves on each host to the server's address")
def test_hosts_resolve_through_lab_dns(inventory, host_run, dns_server, published) -> None:
    hosts = sorted(inventory.groups.get("mailservers", []) + inventory.groups.get("clients", []))
    assert hosts
    for name in hosts:
        conf = host_run(name, "grep -E '^nameserver' /etc/resolv.conf")
        assert conf.stdout.split() == ["nameserver", dns_server], (name, conf.stdout)
        # /etc/hosts does not know ns.DOMAIN: only the DNS can answer.
        out = host_run(name, f"getent ahostsv4 ns.{published['domain']} | head -1")
        assert out.stdout.split()[:1] == [dns_server], (name, out.stdout, out.stderr)


# --- DMARC at the receiving MX -------------------------------------------------------------------


@pytest.fixture(scope="module")
def users(host_run: Callable[..., Any], data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    pw = known_passwords()
    return pw, active_users(host_run, pw, data["organization"]["base_dn"])


@pytest.fixture(scope="module")
def mx(inventory: Any) -> str:
    """The primary MX by the name its certificate and the MX record carry."""
    return inventory_mx(inventory)[0]


def _smtp_send(client_run: Callable[..., Any], server: str, mail_from: str, rcpt: str,
               raw: str) -> Any:
    """Send raw message text from the client to port 25 (no AUTH), as any outside server."""
    client_packages(client_run, "libnet-ssleay-perl")
    b64 = base64.b64encode(raw.encode("utf-8", "surrogateescape")).decode()
    put = client_run(f"echo {b64} | base64 -d > /tmp/dmarc-msg.eml")
    assert put.rc == 0, put.stderr
    return client_run(["swaks", "--server", server, "--port", "25", "--tls",
                       "--from", mail_from, "--to", rcpt, "--data", "@/tmp/dmarc-msg.eml",
                       "--timeout", "60"], timeout=120)


def _reply_to_data(out: Any) -> str:
    """The server's reply to the message's end (swaks prints it after ` ~> .`, over TLS)."""
    text = out.stdout
    i = max(text.rfind("\n ~> .\n"), text.rfind("\n -> .\n"))
    return text[i:] if i >= 0 else text[-600:]


# swaks marks a server's error reply `<**` (plain) or `<~*` (over TLS).
DMARC_REJECT = re.compile(r"<(?:\*\*|~\*) 550 5\.7\.1 rejected by DMARC policy for (\S+)")
ACCEPTED = re.compile(r"<[-~] +250 2\.0\.0 Ok: queued as ")


def _queue_id(host_run: Callable[..., Any], host: str, marker: str, timeout: float = 30) -> str:
    """The Postfix queue id of the message the log names with `marker` (its envelope sender)."""
    deadline = time.monotonic() + timeout
    while True:
        out = host_run(host, f"journalctl -u postfix@- --no-pager -o cat --since -15min | grep -F "
                       f"{shlex.quote(marker)} | grep -oE '^[0-9A-Za-z]{{8,}}:' | tail -1")
        qid = out.stdout.strip().rstrip(":")
        if qid or time.monotonic() > deadline:
            return qid
        time.sleep(1)


def _history(host_run: Callable[..., Any], host: str, role_vars: Callable[..., Any], qid: str,
             timeout: float = 30) -> dict[str, list[str]]:
    """OpenDMARC's history record of job `qid` (aggregate report data), as {key: [values]}."""
    path = role_vars("mailauth", host)["mailauth__dmarc_history_file"]
    deadline = time.monotonic() + timeout
    while True:
        out = host_run(host, f"awk -v q={shlex.quote(qid)} '$1==\"job\"{{on=($2==q)}} on' "
                       f"{shlex.quote(path)}")
        rec: dict[str, list[str]] = {}
        for line in out.stdout.splitlines():
            key, _, value = line.partition(" ")
            rec.setdefault(key, []).append(value.strip())
        if "action" in rec or time.monotonic() > deadline:
            return rec
        time.sleep(1)


@pytest.mark.control("DMARC-01", "A forged ministry From without a valid signature, sent to the "
                         "MX from the client, is refused at end of data with 550 5.7.1 naming the "
                         "domain's DMARC policy (p=reject published through the lab's DNS)")
def test_forged_from_rejected(users, client_run, host_run, mx, inventory, published) -> None:
    assert inventory_dmarc_policy(inventory) == "reject", "the lab publishes p=reject"
    domain = published["domain"]
    _, active = users
    subject = token()
    # Envelope from a foreign domain (Postfix itself refuses an outsider using our domain
    # there, RELAY tests); the header From is the ministry's, as phishing forges it.
    raw = (f"From: {active[0]}\r\nTo: {active[1]}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject}@forger.example>\r\n\r\nPlease pay this invoice.\r\n")
    sent = _smtp_send(client_run, mx, f"{subject}@forger.example", active[1], raw)
    reply = _reply_to_data(sent)
    m = DMARC_REJECT.search(reply)
    assert m and m.group(1) == domain, reply
    assert fetch_delivered(host_run, active[1], subject, timeout=5) is None


@pytest.mark.control("DMARC-02", "A ministry message whose DKIM signature broke in transit (body "
                     "altered after signing) is handled as the policy says: p=reject, refused "
                     "with 550 5.7.1 for the DMARC policy; the unaltered copy is accepted")
def test_broken_signature_rejected(users, client_run, host_run, mx, inventory, published,
                                   role_vars) -> None:
    assert inventory_dmarc_policy(inventory) == "reject"
    domain = published["domain"]
    pw, active = users
    sender, rcpt = active[0], active[1]
    subject = token()
    # Signed by the MX that takes the submission (mail2, the backup MX, relays to mail1).
    backup = inventory_mx(inventory)[-1]
    sent = swaks(client_run, backup, 587, sender, pw[sender], sender, rcpt, subject)
    assert sent.rc == 0, sent.stdout[-800:]
    raw = fetch_delivered(host_run, rcpt, subject)
    assert raw is not None, f"{subject} not delivered"
    head, _, body = raw.partition("\n\n")
    # What the next hop would get: the signed headers, not this MX's own trace and results.
    keep = re.sub(r"^(Return-Path|Delivered-To|Authentication-Results|Received):.*(\n[ \t].*)*\n",
                  "", head + "\n", flags=re.MULTILINE | re.IGNORECASE)
    assert "DKIM-Signature:" in keep
    resend = subject + "-fwd"
    tampered = keep + "\n" + body + "Tai khoan moi: 0123456789\n"
    out = _smtp_send(client_run, mx, f"{resend}@relay.example", rcpt,
                     tampered.replace("\n", "\r\n"))
    reply = _reply_to_data(out)
    m = DMARC_REJECT.search(reply)
    assert m and m.group(1) == domain, reply
    # Positive control: the same signed copy, unaltered, passes DKIM and DMARC and is accepted.
    ok = _smtp_send(client_run, mx, f"{resend}-ok@relay.example", rcpt,
                    (keep + "\n" + body).replace("\n", "\r\n"))
    assert ACCEPTED.search(_reply_to_data(ok)), _reply_to_data(ok)


@pytest.mark.control("DMARC-03", "The receiving MX records the DMARC aggregate report data "
                     "(OpenDMARC's history file): the forged message's entry names the client's "
                     "address, the ministry's From domain, the published p=reject and the reject")
def test_aggregate_report_data_recorded(users, client_run, host_run, mx, inventory, published,
                                        role_vars, host_address) -> None:
    domain = published["domain"]
    _, active = users
    subject = token()
    raw = (f"From: {active[0]}\r\nTo: {active[1]}\r\nSubject: {subject}\r\n\r\nforged\r\n")
    sent = _smtp_send(client_run, mx, f"{subject}@forger.example", active[1], raw)
    assert DMARC_REJECT.search(_reply_to_data(sent)), _reply_to_data(sent)
    primary = inventory.groups["mx_primary"][0]
    qid = _queue_id(host_run, primary, f"{subject}@forger.example")
    assert qid, "no queue id logged for the forged message"
    rec = _history(host_run, primary, role_vars, qid)
    assert rec.get("ipaddr") == [host_address("client")], rec
    assert rec.get("from") == [domain], rec
    assert rec.get("mfrom") == ["forger.example"], rec
    # RFC 7489 7.2's record: the published policy, the alignment results and the disposition,
    # in OpenDMARC's codes (libopendmarc's dmarc.h): p as the letter's ASCII (reject: 'r'),
    # policy 16 = DMARC_POLICY_REJECT, alignment 5 = ..._ALIGNMENT_FAIL, action 0 =
    # DMARC_RESULT_REJECT (the accepted positive control of DMARC-02 is recorded with 2, ACCEPT).
    assert rec.get("p") == [str(ord("r"))], rec
    assert rec.get("pct") == ["100"], rec
    assert rec.get("policy") == ["16"], rec
    assert rec.get("align_dkim") == ["5"] and rec.get("align_spf") == ["5"], rec
    assert "dkim" not in rec, rec  # no signature to record
    assert rec.get("action") == ["0"], rec
