"""Open relay attempts FROM the client host (docs/security.md, RELAY-*): a stranger cannot
hand either MX a message from outside to outside, on port 25 or on submission without AUTH.
The same refusals are part of tests/lab/test_mailflow.py; here they count in the controls table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from authprobe import CA_ON_CLIENT

MX_HOSTS = ("mail1", "mail2")
OUTSIDE_SENDER = "spammer@example.net"
OUTSIDE_RECIPIENT = "victim@example.org"


def rcpt_reply(client_run: Callable[..., Any], server: str, port: int, tls: bool) -> str:
    """swaks up to RCPT TO; the server's reply line to RCPT (or to STARTTLS/MAIL if earlier)."""
    args = ["swaks", "--server", server, "--port", str(port), "--helo", "client.lab"]
    args += ["--from", OUTSIDE_SENDER, "--to", OUTSIDE_RECIPIENT, "--quit-after", "RCPT"]
    if tls:
        args += ["--tls", "--tls-verify", "--tls-ca-path", CA_ON_CLIENT]
    out = client_run([*args, "--timeout", "20"])
    replies = [ln for ln in out.stdout.splitlines() if re.match(r"^<[~*]* \d{3}", ln)]
    assert replies, f"no SMTP replies from {server}:{port}:\n{out.stdout}\n{out.stderr}"
    return replies[-1]


@pytest.mark.control("RELAY-01", "Outside-to-outside mail on port 25 is refused (no open relay)")
@pytest.mark.parametrize("host", MX_HOSTS)
def test_no_open_relay_on_25(
    client_run: Callable[..., Any], host_address: Callable[[str], str], host: str
) -> None:
    reply = rcpt_reply(client_run, host_address(host), 25, tls=False)
    assert re.search(r"\b554\b.*Relay access denied", reply), reply


@pytest.mark.control("RELAY-02", "Submission without AUTH relays nothing")
def test_no_relay_on_submission_without_auth(
    client_run: Callable[..., Any], host_address: Callable[[str], str]
) -> None:
    reply = rcpt_reply(client_run, host_address("mail1"), 587, tls=True)
    # 530 (authentication required) or 554 (relay denied): a 5xx before any data, never 250.
    assert re.search(r"\b5[35][04]\b", reply), reply
