"""The lab itself (marker `lab`): hosts up, reachable over SSH, systemd running, proxy working.

These run after `lab/lab up` (see docs/lab.md). When the lab is not up they are skipped, unless
MAILGOV_LAB_REQUIRED=1 (CI after `lab up`), where a missing lab fails the run instead.
They talk only to the lab hosts' addresses and to the lab's own proxy on the bridge.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from lab import labenv

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


LAB_ID = labenv.lab_id()  # tests/lab/conftest.py has refused a bad MAILGOV_LAB_ID already
LAB_DIR = labenv.lab_dir(REPO, LAB_ID)
SSH_CONFIG = LAB_DIR / "ssh_config"
LAB = REPO / "lab" / "lab"
VENV_BIN = REPO / ".venv" / "bin"

# What the lab promises (lab/lab and inventory/lab must agree with this).
HOSTS = {
    "mail1": (f"10.210.{LAB_ID}.11", "mail1.monre.gov.vn"),
    "mail2": (f"10.210.{LAB_ID}.12", "mail2.monre.gov.vn"),
    "client": (f"10.210.{LAB_ID}.21", "client.lab"),
}
PROXY = (f"10.210.{LAB_ID}.1", 3142)


def _unusable(reason: str) -> None:
    if os.environ.get("MAILGOV_LAB_REQUIRED") == "1":
        pytest.fail(f"lab required but not usable: {reason}")
    pytest.skip(f"lab not up: {reason}")


def ssh(host: str, command: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", host, command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def lab_up() -> None:
    """Skip (or fail under MAILGOV_LAB_REQUIRED=1) unless `lab/lab up` has run."""
    if not SSH_CONFIG.exists():
        _unusable(f"{SSH_CONFIG} missing (run `make lab-up`)")
    addr = HOSTS["mail1"][0]
    try:
        socket.create_connection((addr, 22), timeout=3).close()
    except OSError as exc:
        _unusable(f"mail1 ({addr}:22) not reachable: {exc}")


def test_status_reports_every_host_running() -> None:
    res = subprocess.run([str(LAB), "status"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    for name, (addr, fqdn) in HOSTS.items():
        line = next((x for x in res.stdout.splitlines() if x.split()[:1] == [name]), "")
        # name, PID, address, fqdn, state (degraded: a unit a role added failed, see below)
        assert re.match(rf"{name}\s+\d+\s+{re.escape(addr)}\s+{re.escape(fqdn)}\s+"
                        r"(running|degraded)$", line), res.stdout
    assert re.search(rf"^proxy\s+\d+\s+{re.escape(PROXY[0])}:{PROXY[1]}.*listening$",
                     res.stdout, re.M), res.stdout
    # It reports the instance it looked at (MAILGOV_LAB_ID, inherited from this process).
    assert re.search(rf"^lab instance {LAB_ID} ", res.stdout, re.M), res.stdout


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_host_reachable_over_ssh_with_its_identity(name: str) -> None:
    addr, fqdn = HOSTS[name]
    socket.create_connection((addr, 22), timeout=5).close()
    res = ssh(name, "hostname; hostname -f; id -u; cat /etc/machine-id")
    assert res.returncode == 0, res.stderr
    short, full, uid, machine_id = res.stdout.split()
    assert (short, full, uid) == (name, fqdn, "0")
    assert re.fullmatch(r"[0-9a-f]{32}", machine_id)


def test_hosts_have_distinct_identities() -> None:
    """Each host was unpacked with its own machine-id and SSH host keys."""
    seen: dict[str, set[str]] = {"machine-id": set(), "hostkey": set()}
    for name in HOSTS:
        res = ssh(name, "cat /etc/machine-id; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub")
        assert res.returncode == 0, res.stderr
        mid, fingerprint = res.stdout.splitlines()[:2]
        seen["machine-id"].add(mid)
        seen["hostkey"].add(fingerprint.split()[1])
    assert len(seen["machine-id"]) == len(HOSTS)
    assert len(seen["hostkey"]) == len(HOSTS)


# Units the bare lab host runs; none of them may fail. Units that roles add (postfix, slapd…)
# are the roles' tests' business: a failed one makes systemd "degraded", not "stopped".
BASE_UNITS = ("ssh.service", "dbus.service", "systemd-journald.service",
              "systemd-logind.service", "systemd-journal-flush.service",
              "systemd-tmpfiles-setup.service", "systemd-sysctl.service")


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_systemd_is_pid1_and_running(name: str) -> None:
    res = ssh(name, "cat /proc/1/comm; systemctl is-system-running; systemd-detect-virt")
    comm, state, virt = res.stdout.split()
    assert comm == "systemd"
    assert state in ("running", "degraded"), state
    assert virt == "systemd-nspawn"
    failed = ssh(name, "systemctl --failed --no-legend --plain").stdout.split()
    assert not set(failed) & set(BASE_UNITS), failed
    res = ssh(name, "systemctl is-active " + " ".join(u for u in BASE_UNITS if "setup" not in u
                                                       and "flush" not in u and "sysctl" not in u))
    assert res.returncode == 0, res.stdout


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_sshd_runs_under_systemd_via_testinfra(name: str) -> None:
    import testinfra  # a test dependency (pyproject): never a reason to skip
    host = testinfra.get_host(f"ssh://{name}", ssh_config=str(SSH_CONFIG))
    assert host.system_info.distribution == "debian"
    assert host.system_info.codename == "bookworm"
    sshd = host.service("ssh")
    assert sshd.is_running and sshd.is_enabled
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_hosts_reach_each_other_by_name_and_nothing_else() -> None:
    # client → servers by FQDN (resolved from /etc/hosts: the lab has no DNS).
    res = ssh("client", "ping -c1 -W2 mail1.monre.gov.vn && ping -c1 -W2 mail2.monre.gov.vn")
    assert res.returncode == 0, res.stdout + res.stderr
    res = ssh("mail2", "ping -c1 -W2 mail1")
    assert res.returncode == 0, res.stdout + res.stderr
    # No route out of the lab: the only way out is the package proxy.
    for name in HOSTS:
        res = ssh(name, "ip -4 route show default")
        assert res.returncode == 0 and res.stdout.strip() == "", (name, res.stdout)


def test_apt_goes_through_the_lab_proxy() -> None:
    res = ssh("mail1", "apt-config dump Acquire::http::Proxy")
    assert res.returncode == 0, res.stderr
    assert f'"http://{PROXY[0]}:{PROXY[1]}/"' in res.stdout
    # A real package index fetch, through the proxy, from a host with no route out.
    res = ssh("mail2", "apt-get -q update", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Err:" not in res.stdout, res.stdout
    res = ssh("mail2", "apt-cache policy openssh-server")
    assert re.search(r"\d+ http://\S+ bookworm\S*/main amd64 Packages", res.stdout), res.stdout


def test_proxy_serves_only_the_mirrors() -> None:
    """The proxy is not an open relay to the outside: other destinations are refused."""
    script = (
        "import urllib.request as u, urllib.error as e\n"
        f"o = u.build_opener(u.ProxyHandler({{'http': 'http://{PROXY[0]}:{PROXY[1]}/'}}))\n"
        "try:\n"
        "    o.open('http://not-a-mirror.invalid/x', timeout=20); print('open')\n"
        "except e.HTTPError as err:\n"
        "    print(err.code)\n"
    )
    res = ssh("client", f"python3 -c \"{script}\"")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "403"


def test_proxy_listens_on_the_bridge_only() -> None:
    socket.create_connection(PROXY, timeout=3).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", PROXY[1]), timeout=3).close()


def test_client_has_its_tools() -> None:
    res = ssh("client", "command -v ldapsearch swaks openssl nc curl")
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(res.stdout.split()) == 5


def test_ansible_sees_systemd_on_every_host() -> None:
    ansible = VENV_BIN / "ansible"
    if not ansible.exists():
        _unusable(f"no {ansible} (run make bootstrap)")
    res = subprocess.run(
        [str(ansible), "all", "-m", "setup", "-a", "filter=ansible_service_mgr",
         "-o"], cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    found = dict(re.findall(r'^(\S+) \| SUCCESS => .*"ansible_service_mgr": "(\w+)"',
                            res.stdout, re.M))
    assert found == dict.fromkeys(HOSTS, "systemd"), res.stdout


# --- Host keys: pinned, and a run stops on an unknown or changed key (docs/inventory.md) ----


def _ansible_ping(known_hosts: Path) -> subprocess.CompletedProcess[str]:
    """An ad-hoc ping of mail1 through the lab inventory, with the production example's
    host-key options pointing at ``known_hosts`` (command-line -o beats the ssh_config)."""
    args = (f"-F {SSH_CONFIG} -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts}")
    return subprocess.run(
        [str(VENV_BIN / "ansible"), "mail1", "-m", "ansible.builtin.ping",
         "-e", f"ansible_ssh_common_args='{args}'"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        # A control socket of its own: an open master connection would skip the key check.
        env={**os.environ, "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_SSH_CONTROL_PATH_DIR": str(known_hosts.parent / "cp")})


def test_lab_pins_host_keys(tmp_path: Path) -> None:
    config = SSH_CONFIG.read_text()
    assert "StrictHostKeyChecking yes" in config
    known = (LAB_DIR / "known_hosts").read_text()
    assert re.search(rf"^mail1,\S*{re.escape(HOSTS['mail1'][0])} ssh-ed25519 ", known, re.M)
    pinned = tmp_path / "known_hosts"
    pinned.write_text(known)
    res = _ansible_ping(pinned)
    assert res.returncode == 0, res.stdout + res.stderr


def test_unknown_host_key_stops_the_run(tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    res = _ansible_ping(empty)
    assert res.returncode != 0
    assert "Host key verification failed" in res.stdout + res.stderr, res.stdout + res.stderr


def test_changed_host_key_stops_the_run(tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kind, key = (tmp_path / "other_key.pub").read_text().split()[:2]
    names = f"mail1,{HOSTS['mail1'][1]},{HOSTS['mail1'][0]}"
    changed = tmp_path / "known_hosts"
    changed.write_text(f"{names} {kind} {key}\n")
    res = _ansible_ping(changed)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert ("REMOTE HOST IDENTIFICATION HAS CHANGED" in out
            or "Host key verification failed" in out), out
