"""The production path's guards that need no host (issue 12): playbooks/preflight.yml stops a run
before any host is touched when the inventory still holds the example's documentation ranges as
admin networks (FW-09) or when the certificates a site hands over are missing, expiring, for
other names or not matching their keys (PKI-01); and a run that logs in as a named account with
sudo keeps itself reachable after the firewall loads (FW-09).

The expected values come from the standards, not from the roles: RFC 5737 / RFC 3849 name the
documentation ranges; the names a certificate must carry are the inventory's; a fresh
connection is made as the inventory's login user, as the next run would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import INVENTORY, LAB_DIR, REPO, SSH_CONFIG, VENV_BIN, Inventory, group_hosts

# RFC 5737 (TEST-NET-1/2/3) and RFC 3849: documentation only, never a real network.
DOCUMENTATION_RANGES = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]


def preflight(*extra: dict[str, Any], timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """ansible-playbook playbooks/preflight.yml with extra vars (as JSON: they outrank all)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY),
           str(REPO / "playbooks" / "preflight.yml")]
    for ev in extra:
        cmd += ["-e", json.dumps(ev)]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def pki_dir(inventory: Inventory) -> Path:
    """The controller's certificate directory the inventory names (lab or production-shaped)."""
    dirs = {str(hv.get("pki__ca_dir", "")) for hv in inventory.hostvars.values()}
    dirs = {d.replace("{{ mailgov_lab_dir }}", str(LAB_DIR)) for d in dirs if d}
    assert len(dirs) == 1, f"one pki__ca_dir for the site, not {dirs}"
    return Path(dirs.pop())


@pytest.mark.control("FW-09", "A converge never shuts the admins or itself out: documentation "
                     "ranges as "
                     "admin networks refused before any host is touched; the controller, read "
                     "without sudo, stays reachable")
@pytest.mark.parametrize("placeholder", DOCUMENTATION_RANGES)
def test_preflight_refuses_documentation_ranges(placeholder: str) -> None:
    bad = preflight({"mailgov_admin_networks": ["10.210.250.0/24", placeholder]})
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out[-2000:]
    assert "still lists documentation ranges" in out and placeholder in out, out[-2000:]
    # Nothing was touched: the play gathers no facts and the refusal comes from the first task.
    assert "Gathering Facts" not in out, out[-2000:]


@pytest.mark.control("PKI-01", "Certificates handed over (pki__generate false) are checked before "
                     "any host is touched: present, issued by the CA, valid 30+ days, key match, "
                     "the inventory's names")
def test_preflight_checks_handed_over_certificates(inventory: Inventory, tmp_path: Path) -> None:
    source = pki_dir(inventory)
    hosts = group_hosts(inventory, "mailservers")
    # The inventory's own files (the lab's CA dir, read as a ministry's handed-over files) pass.
    good = preflight({"pki__generate": False})
    assert good.returncode == 0, (good.stdout + good.stderr)[-3000:]
    # Each kind of fault, in a copy of that directory, stops the run with its reason.
    faults = {
        "missing": (lambda d: (d / f"{hosts[0]}.key").unlink(), f"{hosts[0]}.key: missing"),
        "other key": (lambda d: shutil.copy(d / f"{hosts[1]}.key", d / f"{hosts[0]}.key"),
                      f"{hosts[0]}.key: is not the key of"),
        "wrong CA": (lambda d: shutil.copy(d / f"{hosts[0]}.crt", d / "ca.crt"),
                     "not issued by"),
    }
    for name, (break_it, reason) in faults.items():
        copy = tmp_path / name.replace(" ", "-")
        shutil.copytree(source, copy)
        break_it(copy)
        bad = preflight({"pki__generate": False, "pki__ca_dir": str(copy)})
        out = bad.stdout + bad.stderr
        assert bad.returncode != 0, f"{name}: accepted\n{out[-2000:]}"
        assert reason in out, f"{name}: {out[-2000:]}"
        assert "Gathering Facts" not in out
    # A certificate about to expire (less than the 30 days the run asks): ours live <= 825 days.
    late = preflight({"pki__generate": False, "pki__min_valid_days": 900})
    assert late.returncode != 0 and "expires within 900 days" in late.stdout + late.stderr
    # A name the services are reached by that the certificate lacks.
    names = preflight({"pki__generate": False,
                       "pki__cert_names": ["DNS:not-in-the-certificate.example"]})
    assert names.returncode != 0, (names.stdout + names.stderr)[-2000:]
    assert "no subjectAltName DNS:not-in-the-certificate.example" in names.stdout + names.stderr


@pytest.mark.control("FW-09", "A converge never shuts the admins or itself out: documentation "
                     "ranges as "
                     "admin networks refused before any host is touched; the controller, read "
                     "without sudo, stays reachable")
def test_controller_stays_reachable(inventory: Inventory, host_address: Any) -> None:
    for name in group_hosts(inventory, "mailservers"):
        hv = inventory.hostvars[name]
        user = str(hv.get("ansible_user", "root"))
        # A new TCP connection (no control master), with the inventory's key and known hosts, as
        # the next run would open it; then sudo as the run's become does.
        cmd = ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", "-o", "ControlMaster=no",
               "-o", "ControlPath=none", "-o", "ConnectTimeout=10", "-l", user,
               host_address(name),
               "sudo -n true && echo reached as $(id -un) from ${SSH_CONNECTION%% *}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, f"{name} as {user}: {out.stderr.strip()}"
        assert out.stdout.startswith(f"reached as {user} from "), out.stdout
        # The production-shaped lab leaves the controller out of mailgov_admin_networks on
        # purpose: it gets in only through the address the run read without sudo.
        controller = out.stdout.split()[-1]
        admitted = subprocess.run(
            ["ssh", "-F", str(SSH_CONFIG), "-o", "BatchMode=yes", host_address(name),
             f"nft get element inet mailgov admin_v4 '{{ {controller} }}'"],
            capture_output=True, text=True, timeout=60, check=False)
        assert admitted.returncode == 0, f"{name}: {controller} not in admin_v4: {admitted.stderr}"
