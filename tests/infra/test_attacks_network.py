"""Network attacks from the `client` host (a third machine on the mail servers' network).

The lab's client is an admin workstation (hardening__admin_networks = the `clients` group when
the inventory has no mailgov_admin_networks), so from its own address it reaches SSH and LDAP.
To attack from OUTSIDE the admin networks, the client takes a second address on its interface
(OUTSIDER, an unused address of the lab subnet) and connects from it: the firewall must drop
SSH, LDAP and unlisted ports for that source, and still serve the public mail ports.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from authprobe import ldap_client, make_probe, rc_of, remove_probe

PROBE_PORT = 8026  # a port no role opens: the probe listener below
OUTSIDER_LAST_OCTET = 250
# Brute-force tests (F2B-) ban the client on purpose; this module's attacks need it unbanned
# and leave it so (conftest.Fail2banBudget): every attack runs against every mail host.
pytestmark = pytest.mark.usefixtures("fail2ban_budget")


def probe(client_run: Callable[..., Any], addr: str, ports: list[int],
          source: str | None = None, source_port: int = 0) -> dict[int, str]:
    """TCP connect from the client (optionally from a given source address and port).

    Returns {port: "open" | "refused" | "timeout" | error}: "timeout" is what a dropping
    firewall gives; "refused" is a closed port on a reachable host.
    """
    # The ports at once, each in its own thread: a dropped port costs its whole timeout.
    program = f"""
import json, socket
from concurrent.futures import ThreadPoolExecutor
def one(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(4)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        if {source!r} or {source_port!r}:
            s.bind(({source!r} or "", {source_port!r}))
        s.connect(({addr!r}, port))
        return "open"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return "error: " + str(exc)
    finally:
        s.close()
ports = sorted(set({ports!r}))
with ThreadPoolExecutor(len(ports)) as pool:
    print(json.dumps(dict(zip(ports, pool.map(one, ports)))))
"""
    out = client_run(f"python3 -c {shlex.quote(program)}", timeout=120)
    assert out.rc == 0, out.stderr
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def outsider(client_run: Callable[..., Any], host_address: Callable[[str], str],
             inventory_groups: dict[str, list[str]]) -> Iterator[str]:
    """An extra address on the client, outside the admin networks; removed afterwards."""
    client_addr = host_address("client")
    addr = ".".join([*client_addr.split(".")[:3], str(OUTSIDER_LAST_OCTET)])
    dev = client_run("ip -o -4 route get " + host_address(inventory_groups["mailservers"][0])
                     + " | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'").stdout.strip() or "eth0"
    res = client_run(f"ip addr replace {addr}/32 dev {dev}")
    assert res.rc == 0, f"cannot add {addr} on the client: {res.stderr}"
    yield addr
    client_run(f"ip addr del {addr}/32 dev {dev}")


@pytest.fixture(scope="module")
def probe_listener(mail_hosts: dict[str, Any]) -> Iterator[int]:
    """A TCP listener on every mail host at PROBE_PORT, so "unreachable" means filtered, not
    closed."""
    unit = "mailgov-fw-probe"
    for host in mail_hosts.values():
        host.run(f"systemctl stop {unit} 2>/dev/null; systemctl reset-failed {unit} 2>/dev/null")
        started = host.run(
            f"systemd-run --unit={unit} --collect python3 -c "
            + shlex.quote("import socket,time\ns=socket.socket();"
                          "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                          f"s.bind(('0.0.0.0',{PROBE_PORT}));s.listen(8)\n"
                          "while True:\n c,_=s.accept();c.close()"))
        assert started.rc == 0, started.stderr
    for name, host in mail_hosts.items():
        assert host.run(f"for i in $(seq 20); do ss -ltn | grep -q ':{PROBE_PORT} ' && exit 0; "
                        "sleep 0.5; done; exit 1").rc == 0, f"no probe listener on {name}"
    yield PROBE_PORT
    for host in mail_hosts.values():
        host.run(f"systemctl stop {unit}")


@pytest.mark.control("FW-05", "A port outside the allow-list is unreachable from the network")
def test_unlisted_port_dropped(client_run: Callable[..., Any], infra_host: Callable[[str], Any],
                               host_address: Callable[[str], str], probe_listener: int,
                               mail_host: str) -> None:
    host = infra_host(mail_host)
    addr = host_address(mail_host)
    # The service is really there: it answers on the host itself...
    local = host.run(f"python3 -c \"import socket; socket.create_connection(('{addr}', "
                     f"{probe_listener}), 3)\"")
    assert local.rc == 0, "probe listener not reachable locally: the test would prove nothing"
    # ...but from the client (even an admin workstation) the firewall drops it.
    assert probe(client_run, addr, [probe_listener]) == {probe_listener: "timeout"}


@pytest.mark.control("FW-10", "Return traffic is matched by connection state, not source port: "
                     "from source port 389/636/10045 the client still cannot reach a port "
                     "closed to it; LDAP and replication still work")
def test_source_port_opens_nothing(client_run: Callable[..., Any],
                                   infra_host: Callable[[str], Any],
                                   host_address: Callable[[str], str], host_run: Callable[..., Any],
                                   probe_listener: int, data: dict[str, Any]) -> None:
    addr = host_address("mail1")
    # The port is closed to the client with an ordinary source port (FW-05's finding) ...
    assert probe(client_run, addr, [probe_listener]) == {probe_listener: "timeout"}
    # ... and stays closed when the client sends from a port the internal services answer
    # from: a stateless "tcp sport 389 accept" would let these in ("open").
    for sport in (389, 636, 10045):
        got = probe(client_run, addr, [probe_listener], source_port=sport)
        assert got == {probe_listener: "timeout"}, f"source port {sport}: {got}"
    # Positive controls: the client's own LDAP connection gets its answers (return traffic
    # to the client), and mail2, a client of mail1's slapd, still replicates a new entry.
    whoami = ldap_client(client_run, "ldapwhoami", addr, ["-x"])
    assert rc_of(whoami) == 0 and "anonymous" in whoami.stdout, whoami.stdout
    org = data["organization"]
    probe_entry = make_probe(host_run, org["base_dn"], org["domain"], "fw09")
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline:
            seen = host_run("mail2", "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b "
                            f"{shlex.quote(probe_entry.dn)} -s base 1.1").stdout
            if probe_entry.dn in seen.replace("\n ", ""):
                break
            time.sleep(1)
        assert probe_entry.dn in seen.replace("\n ", ""), "new entry did not replicate to mail2"
    finally:
        remove_probe(host_run, probe_entry)


@pytest.mark.control("FW-06", "Outside the admin networks: SSH, LDAP dropped, mail ports open")
def test_outsider_sees_only_mail_ports(client_run: Callable[..., Any], outsider: str,
                                       host_address: Callable[[str], str],
                                       role_vars: Callable[..., dict[str, Any]],
                                       mail_host: str) -> None:
    hv = role_vars("hardening", mail_host)
    admin_ports = [int(p) for p in hv["hardening__admin_tcp_ports"]]
    ldap_ports = [int(p) for p in hv["hardening__internal_tcp_ports"]]
    public = [int(p) for p in hv["hardening__public_tcp_ports"]]
    addr = host_address(mail_host)
    from_outside = probe(client_run, addr, admin_ports + ldap_ports + public, outsider)
    for port in admin_ports + ldap_ports:
        assert from_outside[port] == "timeout", f"{mail_host}:{port} from {outsider}: " \
            f"{from_outside}"
    # SMTP must stay reachable by the world; (25 is always served by Postfix).
    assert from_outside[25] == "open", f"{mail_host}:25 from outside: {from_outside}"
    # The same ports from the client's own (admin) address: the difference is the source.
    from_admin = probe(client_run, addr, admin_ports)
    assert all(v == "open" for v in from_admin.values()), from_admin


def ssh_attempt(client_run: Callable[..., Any], addr: str, *opts: str) -> Any:
    cmd = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
           "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=/dev/null", *opts,
           f"root@{addr}", "true"]
    return client_run(cmd, timeout=60)


@pytest.mark.control("SSH-06", "A password login attempt from the network is refused")
def test_ssh_password_refused(client_run: Callable[..., Any],
                              host_address: Callable[[str], str], mail_host: str) -> None:
    addr = host_address(mail_host)
    res = ssh_attempt(client_run, addr, "-o", "PubkeyAuthentication=no",
                      "-o", "PreferredAuthentications=password,keyboard-interactive")
    assert res.rc == 255
    # The server offers public keys and nothing else.
    assert "Permission denied (publickey)" in res.stderr, res.stderr


@pytest.mark.control("SSH-07", "SSH refuses weak key exchange, ciphers and MACs")
def test_ssh_weak_algorithms_refused(client_run: Callable[..., Any],
                                     host_address: Callable[[str], str], mail_host: str) -> None:
    addr = host_address(mail_host)
    attempts = {
        "key exchange": ("KexAlgorithms=diffie-hellman-group14-sha1", "no matching key exchange"),
        "cipher": ("Ciphers=aes128-cbc", "no matching cipher"),
        # With an AEAD cipher no MAC is used: ask for a cipher that needs one.
        "MAC": ("MACs=hmac-sha1", "no matching MAC"),
    }
    for what, (opt, message) in attempts.items():
        extra = ["-o", "Ciphers=aes256-ctr"] if what == "MAC" else []
        res = ssh_attempt(client_run, addr, "-o", opt, *extra)
        assert res.rc == 255 and message in res.stderr, f"{what}: {res.stderr}"


@pytest.mark.control("FW-07", "Dropped packets are logged (rate-limited) for the admins")
def test_drops_are_counted(client_run: Callable[..., Any], infra_host: Callable[[str], Any],
                           host_address: Callable[[str], str], probe_listener: int,
                           mail_host: str) -> None:
    """The drop rule's counter moves: the half of FW-07 that holds in a container too."""
    host = infra_host(mail_host)
    counter = "nft list chain inet mailgov input | grep -o 'counter packets [0-9]*'"
    before = host.check_output(counter)
    probe(client_run, host_address(mail_host), [probe_listener])
    after = host.check_output(counter)
    assert int(after.split()[-1]) > int(before.split()[-1]), "drop counter unchanged"


@pytest.mark.control("FW-07", "Dropped packets are logged (rate-limited) for the admins")
def test_drops_reach_the_kernel_log(client_run: Callable[..., Any],
                                    infra_host: Callable[[str], Any],
                                    host_address: Callable[[str], str], probe_listener: int,
                                    role_vars: Callable[..., dict[str, Any]],
                                    mail_host: str) -> None:
    """The drop is in the kernel log with the role's prefix. A container's kernel log is the
    machine's: skipped there (tests/allowed_gaps.yml), so FW-07 shows PARTIAL in the lab."""
    host = infra_host(mail_host)
    if host.run("systemd-detect-virt --container").rc == 0:
        pytest.skip("container: the kernel log is the machine's; the drop counter is the proof")
    prefix = role_vars("hardening", mail_host)["hardening__nft_log_prefix"].strip()
    probe(client_run, host_address(mail_host), [probe_listener])
    logged = host.run(f"journalctl -k --since '-2min' | grep -F '{prefix}'")
    assert logged.rc == 0, "no drop logged in the kernel log"
