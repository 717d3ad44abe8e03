"""Open relay attempts FROM the client host (docs/security.md, RELAY-*): a stranger cannot
hand any mail host a message from outside to outside, on port 25 or on submission without AUTH.
Every attack runs against every host of the inventory's `mailservers` group (`mail_host`).
The same refusals are part of tests/lab/test_mailflow.py; here they count in the controls table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from authprobe import CA_ON_CLIENT
from mailhelpers import client_packages

# No failed login here; the budget still starts the module with the client unbanned.
pytestmark = pytest.mark.usefixtures("fail2ban_budget")
OUTSIDE_SENDER = "spammer@example.net"
OUTSIDE_RECIPIENT = "victim@example.org"


def rcpt_reply(client_run: Callable[..., Any], server: str, port: int, tls: bool,
               sender: str = OUTSIDE_SENDER, recipient: str = OUTSIDE_RECIPIENT) -> str:
    """swaks up to RCPT TO; the server's reply line to RCPT (or to STARTTLS/MAIL if earlier)."""
    args = ["swaks", "--server", server, "--port", str(port), "--helo", "client.lab"]
    args += ["--from", sender, "--to", recipient, "--quit-after", "RCPT"]
    if tls:
        # swaks' STARTTLS needs Net::SSLeay: install it here, not rely on an earlier module.
        client_packages(client_run, "libnet-ssleay-perl")
        args += ["--tls", "--tls-verify", "--tls-ca-path", CA_ON_CLIENT]
    out = client_run([*args, "--timeout", "20"])
    # swaks marks client lines "->" ("~>" over TLS), server lines "<-" ("<~"), errors "<**"
    # ("<~*"). The answer to RCPT is the server line after it; if swaks stopped earlier
    # (refused at STARTTLS or MAIL), the last error is the answer.
    lines = out.stdout.splitlines()
    rcpt = next((i for i, ln in enumerate(lines) if re.match(r"^\s*[-~]> RCPT TO", ln)), None)
    if rcpt is not None:
        after = [ln for ln in lines[rcpt + 1:] if re.match(r"^<[-~*]*\s+\d{3}", ln)]
        if after:
            return after[0]
    errors = [ln for ln in lines if re.match(r"^<[~]?\*+\s+\d{3}", ln)]
    assert errors, f"no SMTP replies from {server}:{port}:\n{out.stdout}\n{out.stderr}"
    return errors[-1]


@pytest.mark.control("RELAY-01", "Outside-to-outside mail on port 25 is refused (no open relay)")
def test_no_open_relay_on_25(
    client_run: Callable[..., Any], host_address: Callable[[str], str], mail_host: str
) -> None:
    reply = rcpt_reply(client_run, host_address(mail_host), 25, tls=False)
    assert re.search(r"\b554\b.*Relay access denied", reply), reply


@pytest.mark.control("RELAY-02", "Submission without AUTH relays nothing")
def test_no_relay_on_submission_without_auth(
    client_run: Callable[..., Any], host_address: Callable[[str], str], mail_host: str
) -> None:
    reply = rcpt_reply(client_run, host_address(mail_host), 587, tls=True)
    # The submission service takes only logged-in clients (smtpd_client_restrictions
    # permit_sasl_authenticated, reject): RFC 3463 5.7.1, "Client host rejected".
    assert re.search(r"\b554\b 5\.7\.1 .*Client host rejected: Access denied", reply), reply


@pytest.mark.control("RELAY-03", "An outsider claiming one of the domain's senders on port 25 "
                     "is refused (554 5.7.1), even to a local recipient")
def test_outsider_claiming_a_local_sender_is_refused(
    client_run: Callable[..., Any], host_address: Callable[[str], str], mail_host: str,
    org: dict[str, str]
) -> None:
    domain = org["domain"]
    spoofed = rcpt_reply(client_run, host_address(mail_host), 25, tls=False,
                         sender=f"postmaster@{domain}", recipient=f"postmaster@{domain}")
    assert re.search(r"\b554\b 5\.7\.1 .*Sender address of this domain must log in", spoofed), \
        spoofed
    # The positive control: the same message from an outside sender is accepted at RCPT.
    honest = rcpt_reply(client_run, host_address(mail_host), 25, tls=False,
                        sender=OUTSIDE_SENDER, recipient=f"postmaster@{domain}")
    assert re.search(r"\b250\b", honest), honest


# Old tricks for reaching an outside address through a local one: the percent hack, a
# bang path, a second @, a quoted local part (RFC 5321 §3.6.1, §4.1.2), and a source route.
RELAY_TRICKS = ("victim%example.org@{d}", "example.org!victim@{d}", "victim@example.org@{d}",
                '"victim@example.org"@{d}', "@{d}:victim@example.org")


@pytest.mark.control("RELAY-04", "Relay tricks (percent hack, bang path, quoted and "
                     "source-routed addresses) are refused on port 25")
def test_relay_tricks_are_refused(
    client_run: Callable[..., Any], host_address: Callable[[str], str], mail_host: str,
    org: dict[str, str]
) -> None:
    for trick in RELAY_TRICKS:
        reply = rcpt_reply(client_run, host_address(mail_host), 25, tls=False,
                           recipient=trick.format(d=org["domain"]))
        # 554 5.7.1 Relay access denied, or 501 5.1.3 for a syntax Postfix will not route.
        assert re.search(r"\b554\b 5\.7\.1 .*Relay access denied|\b501\b 5\.1\.3 ",
                         reply), (trick, reply)
