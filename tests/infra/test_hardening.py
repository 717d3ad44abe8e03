"""Host hardening (roles/hardening), read back from the hosts' effective configuration.

Controls SSH-, FW-, OS-, UPD-, LOG- of docs/security.md. Security-relevant expected values are
the floors of tests/infra/standards.py (ssh-audit, CIS, DISA, Debian; each constant names its
source) and the data's policy; the role's variables (`role_vars("hardening", host)`) and the
inventory give only deployment facts (login user, admin networks, file lists).
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import standards

MAIL_HOSTS = ["mail1", "mail2"]


@pytest.fixture(params=MAIL_HOSTS)
def mail_host(request: pytest.FixtureRequest, infra_host: Any) -> tuple[str, Any]:
    """Each mail server in turn: (inventory name, testinfra host)."""
    return request.param, infra_host(request.param)


@pytest.fixture
def hvars(mail_host: tuple[str, Any], role_vars: Any) -> dict[str, Any]:
    return role_vars("hardening", mail_host[0])


USER_LISTS = frozenset({"allowusers", "denyusers", "allowgroups", "denygroups"})


def sshd_effective(host: Any) -> dict[str, str]:
    """`sshd -T`: the configuration sshd really uses (keys lower-case)."""
    out = host.check_output("sshd -T")
    settings: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key in USER_LISTS and key in settings:
            # `sshd -T` prints one line per user of AllowUsers/DenyUsers (and groups).
            settings[key] += " " + value
        else:
            settings.setdefault(key, value)
    return settings


# --- SSH ---------------------------------------------------------------------------------


@pytest.mark.control("SSH-01", "SSH accepts public keys only (no password or keyboard-interactive)")
def test_ssh_key_only(mail_host: tuple[str, Any]) -> None:
    cfg = sshd_effective(mail_host[1])
    assert cfg["passwordauthentication"] == "no"
    assert cfg["kbdinteractiveauthentication"] == "no"
    assert cfg["pubkeyauthentication"] == "yes"
    assert cfg["authenticationmethods"] == "publickey"
    assert cfg["permitemptypasswords"] == "no"
    assert cfg["hostbasedauthentication"] == "no"


def floors_met(problems: list[str]) -> None:
    assert not problems, "weaker than the floor (tests/infra/standards.py):\n" + "\n".join(
        problems)


@pytest.mark.control("SSH-02", "root never logs in with a password; only the admin login user")
def test_ssh_root_and_users(mail_host: tuple[str, Any], inventory: Any) -> None:
    cfg = sshd_effective(mail_host[1])
    # The login users are deployment facts: the inventory's ansible_user (root when unset) and
    # the other admins it names (mailgov_ssh_admin_users).
    hv = inventory.hostvars[mail_host[0]]
    logins = [str(hv.get("ansible_user", "root"))] + [
        str(u) for u in hv.get("mailgov_ssh_admin_users", [])]
    floors_met(standards.ssh_access_violations(cfg, logins))
    assert sorted(cfg["allowusers"].split()) == sorted(set(logins))
    if "root" not in logins:
        # Named admin accounts log in: root cannot log in over SSH at all.
        assert cfg["permitrootlogin"] == "no"


@pytest.mark.control("SSH-03", "SSH offers only modern KEX, ciphers, MACs, host keys")
def test_ssh_algorithms(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    cfg = sshd_effective(host)
    problems = standards.sshd_violations(cfg)
    if any(k.startswith("diffie-hellman-group-exchange") for k in cfg["kexalgorithms"].split(",")):
        problems += standards.ssh_moduli_violations(host.file("/etc/ssh/moduli").content_string)
    for pub in host.check_output("ls /etc/ssh/ssh_host_*_key.pub").split():
        bits, *_, kind = host.check_output(f"ssh-keygen -l -f {pub}").split()
        kind = kind.strip("()")
        if kind == "DSA":
            problems.append(f"{pub}: a DSA host key")
        if kind == "RSA" and int(bits) < standards.SSH_RSA_HOST_KEY_MIN_BITS:
            problems.append(f"{pub}: RSA {bits} bits < {standards.SSH_RSA_HOST_KEY_MIN_BITS}")
    floors_met(problems)
    weak = re.compile(r"cbc|3des|arcfour|sha1|md5|ssh-rsa$|ssh-dss", re.I)
    for key in ("kexalgorithms", "ciphers", "macs", "hostkeyalgorithms"):
        bad = [a for a in cfg[key].split(",") if weak.search(a)]
        assert not bad, f"{key} offers weak algorithms {bad}"


@pytest.mark.control("SSH-04", "SSH forwards nothing (TCP, agent, X11, tunnels)")
def test_ssh_no_forwarding(mail_host: tuple[str, Any]) -> None:
    cfg = sshd_effective(mail_host[1])
    for key in ("allowtcpforwarding", "allowagentforwarding", "x11forwarding", "permittunnel",
                "allowstreamlocalforwarding", "gatewayports", "permituserenvironment"):
        assert cfg[key] == "no", f"{key} is {cfg[key]}"


@pytest.mark.control("SSH-05", "sshd_config passes sshd -t and no drop-in overrides it")
def test_ssh_config_valid(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    assert host.run("sshd -t").rc == 0
    assert host.run("ls /etc/ssh/sshd_config.d/*.conf").rc != 0, "drop-ins present"
    conf = host.file("/etc/ssh/sshd_config")
    assert conf.mode == 0o600 and conf.user == "root"
    assert not conf.contains(r"^\s*Include"), "sshd_config includes other files"
    assert host.service("ssh").is_running


# --- firewall ----------------------------------------------------------------------------


# policy.admin_ssh as docs/data-format.md documents its defaults (the data may set each).
ADMIN_SSH_DEFAULTS = {"classical_kex": False, "max_sessions": 4, "max_startups": "10:30:60",
                      "login_grace_seconds": 30, "idle_timeout_minutes": 10}


def admin_ssh(policy: dict[str, Any]) -> dict[str, Any]:
    return {**ADMIN_SSH_DEFAULTS, **(policy.get("admin_ssh") or {})}


def ssh_from_client(client_run: Any, host_address: Any, infra_host: Any, name: str,
                    *opts: str) -> Any:
    """One SSH attempt from the client host (no key: it never logs in), then the client is
    unbanned there: a refused negotiation may count for fail2ban's sshd jail."""
    res = client_run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                      "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", *opts,
                      f"nobody@{host_address(name)}", "true"], timeout=60)
    infra_host(name).run(f"fail2ban-client unban {host_address('client')} >/dev/null 2>&1 || true")
    return res


@pytest.mark.control("SSH-08", "Post-quantum key exchange only, unless the data's "
                     "policy.admin_ssh.classical_kex re-admits the classical ones")
def test_ssh_post_quantum_kex(mail_host: tuple[str, Any], policy: dict[str, Any],
                              client_run: Any, host_address: Any, infra_host: Any) -> None:
    name, host = mail_host
    offered = set(sshd_effective(host)["kexalgorithms"].split(","))
    if admin_ssh(policy)["classical_kex"]:
        assert offered & standards.SSH_KEX_POST_QUANTUM, offered
        assert offered <= standards.SSH_KEX, offered - standards.SSH_KEX
        return
    assert offered and offered <= standards.SSH_KEX_POST_QUANTUM, (
        f"classical key exchange offered: {sorted(offered - standards.SSH_KEX_POST_QUANTUM)}")
    # A client that only speaks curve25519 is refused at key exchange, for that reason ...
    old = ssh_from_client(client_run, host_address, infra_host, name,
                          "-o", "KexAlgorithms=curve25519-sha256")
    assert old.rc == 255 and "no matching key exchange method found" in old.stderr, old.stderr
    # ... and the post-quantum one gets past it, to the key-only login (positive control).
    new = ssh_from_client(client_run, host_address, infra_host, name,
                          "-o", "KexAlgorithms=sntrup761x25519-sha512@openssh.com")
    assert "Permission denied (publickey)" in new.stderr, new.stderr


@pytest.mark.control("SSH-09", "Host keys are Ed25519 (or RSA >= 3072) only: no ECDSA or DSA "
                     "key on disk or offered")
def test_ssh_host_keys(mail_host: tuple[str, Any], client_run: Any, host_address: Any,
                       infra_host: Any) -> None:
    name, host = mail_host
    problems = []
    for pub in host.check_output("ls /etc/ssh/ | grep '^ssh_host_.*_key'").split():
        if pub.endswith(".pub"):
            bits, *_, kind = host.check_output(f"ssh-keygen -l -f /etc/ssh/{pub}").split()
            kind = kind.strip("()")
            if kind not in standards.SSH_HOST_KEY_TYPES:
                problems.append(f"{pub}: {kind}")
            elif kind == "RSA" and int(bits) < standards.SSH_RSA_HOST_KEY_MIN_BITS:
                problems.append(f"{pub}: RSA {bits} bits")
    floors_met(problems)
    res = ssh_from_client(client_run, host_address, infra_host, name,
                          "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256")
    assert res.rc == 255 and "no matching host key type found" in res.stderr, res.stderr


@pytest.mark.control("SSH-10", "sshd's session limits are the data's (policy.admin_ssh)")
def test_ssh_limits_from_data(mail_host: tuple[str, Any], policy: dict[str, Any]) -> None:
    cfg = sshd_effective(mail_host[1])
    want = admin_ssh(policy)
    assert int(cfg["maxsessions"]) == want["max_sessions"]
    assert cfg["maxstartups"] == want["max_startups"]
    assert int(cfg["logingracetime"]) == want["login_grace_seconds"]
    idle = int(cfg["clientaliveinterval"]) * int(cfg["clientalivecountmax"])
    assert idle == want["idle_timeout_minutes"] * 60, cfg


def nft_chain(host: Any) -> str:
    return host.check_output("nft list chain inet mailgov input")


def in_set(host: Any, set_name: str, address: str) -> bool:
    """Is the address inside an element (address or range) of the nftables set?"""
    return host.run(f"nft get element inet mailgov {set_name} '{{ {address} }}'").rc == 0


@pytest.mark.control("FW-01", "Inbound traffic is dropped unless allowed; loaded at boot")
def test_fw_default_drop(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    chain = nft_chain(host)
    assert re.search(r"type filter hook input priority filter; policy drop;", chain)
    assert host.service("nftables").is_enabled
    assert host.service("nftables").is_running or host.run(
        "systemctl show -p ActiveState --value nftables").stdout.strip() == "active"
    fwd = host.check_output("nft list chain inet mailgov forward")
    assert "policy drop;" in fwd


@pytest.mark.control("FW-08", "No service listens on IPv6 (loopback aside), and the firewall's "
                     "table is inet, so it would filter IPv6 too")
def test_no_ipv6_listeners(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    out = host.run("ss -H -l -n -t -u")
    assert out.rc == 0, out.stderr
    local = [ln.split()[4] for ln in out.stdout.splitlines() if len(ln.split()) > 4]
    assert local, "ss listed no listening socket at all"  # the parse found something
    assert any(a.startswith("0.0.0.0:") for a in local), local
    v6 = [a for a in local if a.startswith("[") and not a.startswith("[::1]")]
    assert v6 == [], f"{mail_host[0]} listens on IPv6: {v6}"
    assert "table inet mailgov" in host.check_output("nft list tables")


@pytest.mark.control("FW-02", "Only the mail ports are open to everyone")
def test_fw_public_ports(mail_host: tuple[str, Any], inventory_groups: dict[str, list[str]]
                         ) -> None:
    chain = nft_chain(mail_host[1])
    public = [ln for ln in chain.splitlines()
              if re.search(r"dport .* accept$", ln) and "saddr" not in ln]
    assert len(public) == 1, f"expected one public port rule, got {public}"
    assert re.match(r"^\s*tcp dport", public[0]), public
    ports = {int(p) for p in re.findall(r"\d+", public[0])}
    # Which host serves HTTPS (MTA-STS, the password page) is a deployment fact: mx_primary.
    serves_https = mail_host[0] in inventory_groups.get("mx_primary", [])
    floors_met(standards.public_port_violations(ports, serves_https))
    assert ports >= standards.PUBLIC_MAIL_PORTS, "a mail port is closed"


def admin_addresses(hvars: dict[str, Any]) -> list[str]:
    nets = hvars["hardening__admin_networks"]
    return [str(n).split("/")[0] for n in nets if ":" not in str(n)]


@pytest.mark.control("FW-03", "SSH is open only to the admin networks")
def test_fw_ssh_admin_only(mail_host: tuple[str, Any], hvars: dict[str, Any]) -> None:
    host = mail_host[1]
    chain = nft_chain(host)
    ssh_rules = [ln.strip() for ln in chain.splitlines() if re.search(r"dport \{?[^}]*\b22\b", ln)]
    assert ssh_rules == ["ip saddr @admin_v4 tcp dport 22 accept"], ssh_rules
    admins = admin_addresses(hvars)
    assert admins, "no admin network in the role variables"
    for addr in admins:
        assert in_set(host, "admin_v4", addr), f"admin address {addr} not admitted"
    # A mail server is not an admin workstation.
    other = "mail2" if mail_host[0] == "mail1" else "mail1"
    other_addr = host.check_output(
        f"getent ahostsv4 {other}.monre.gov.vn | head -n1 | cut -d' ' -f1")
    assert not in_set(host, "admin_v4", other_addr)


@pytest.mark.control("FW-04", "LDAP and the policy service: only mail hosts and admin networks")
def test_fw_ldap_sources(mail_host: tuple[str, Any], hvars: dict[str, Any],
                         host_address: Any) -> None:
    host = mail_host[1]
    chain = nft_chain(host)
    internal = sorted(int(p) for p in hvars["hardening__internal_tcp_ports"])
    ports = "{ " + ", ".join(str(p) for p in internal) + " }"
    assert f"ip saddr @internal_v4 tcp dport {ports} accept" in chain
    for name in MAIL_HOSTS:
        assert in_set(host, "internal_v4", host_address(name)), f"{name} cannot reach LDAP"
    for addr in admin_addresses(hvars):
        assert in_set(host, "internal_v4", addr)


# --- OS ----------------------------------------------------------------------------------


def in_container(host: Any) -> bool:
    return host.run("systemd-detect-virt --container").rc == 0


@pytest.mark.control("OS-01", "Kernel hardening settings are installed for boot")
def test_sysctl_file(mail_host: tuple[str, Any]) -> None:
    f = mail_host[1].file("/etc/sysctl.d/90-mailgov-hardening.conf")
    assert f.exists and f.mode == 0o644 and f.user == "root"
    got = {}
    for line in f.content_string.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, v = (s.strip() for s in line.split("=", 1))
            got[k] = v
    floors_met(standards.sysctl_violations(got))
    # A later file in sysctl.d (or /etc/sysctl.conf) must not set a floor key back.
    later = mail_host[1].run(
        "for f in /etc/sysctl.conf $(ls /etc/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf "
        "2>/dev/null | awk -F/ '$NF > \"90-mailgov-hardening.conf\"'); do "
        "grep -Hv '^[[:space:]]*[#;]' $f 2>/dev/null; done").stdout
    overrides = {}
    for line in later.splitlines():
        _, _, setting = line.partition(":")
        if "=" in setting:
            k, v = (x.strip() for x in setting.split("=", 1))
            if k in standards.SYSCTL_FLOORS:
                overrides[k] = v
    floors_met(standards.sysctl_violations({**got, **overrides}))


@pytest.mark.control("OS-05", "Kernel hardening settings are in effect")
def test_sysctl_effective(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    if in_container(host):
        # The lab's hosts share the machine's kernel and have /proc/sys read-only.
        pytest.skip("container: the kernel belongs to the machine; proven on real servers")
    got = {}
    for key in standards.SYSCTL_FLOORS:
        out = host.run(f"sysctl -n {key}")
        if out.rc == 0:
            got[key] = out.stdout.strip()
    floors_met(standards.sysctl_violations(got))


@pytest.mark.control("OS-02", "Sensitive files have restrictive modes and owners")
def test_file_modes(mail_host: tuple[str, Any], hvars: dict[str, Any]) -> None:
    host = mail_host[1]
    checked = 0
    for item in hvars["hardening__file_modes"]:
        f = host.file(item["path"])
        if not f.exists:
            continue
        checked += 1
        assert oct(f.mode) == oct(int(item["mode"], 8)), item["path"]
        assert (f.user, f.group) == (item["owner"], item["group"]), item["path"]
    assert checked >= 5, "most sensitive files are missing?"
    # Private host keys: root only.
    for key in host.check_output("ls /etc/ssh/ssh_host_*_key").split():
        assert host.file(key).mode & 0o077 == 0, key


@pytest.mark.control("OS-03", "Login sessions get a restrictive umask")
def test_umask(mail_host: tuple[str, Any], hvars: dict[str, Any]) -> None:
    line = mail_host[1].check_output(r"grep -E '^\s*UMASK\s' /etc/login.defs")
    assert line.split()[1] == hvars["hardening__umask"]
    assert int(hvars["hardening__umask"], 8) & 0o007 == 0o007, "others could read new files"


@pytest.mark.control("OS-04", "Core dumps are disabled")
def test_no_core_dumps(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    limits = host.file("/etc/security/limits.d/90-mailgov-coredump.conf").content_string
    assert re.search(r"^\*\s+hard\s+core\s+0\s*$", limits, re.M), limits
    # Not from the role's settings: the kernel's own switch for setuid dumps (CIS).
    assert host.file("/etc/sysctl.d/90-mailgov-hardening.conf").contains(
        r"^fs.suid_dumpable\s*=\s*0\s*$")
    # A login shell really gets the limit (pam_limits).
    assert host.check_output("su -s /bin/sh -l root -c 'ulimit -H -c'") == "0"


# --- updates -----------------------------------------------------------------------------


@pytest.mark.control("UPD-01", "unattended-upgrades installs security updates only, daily")
def test_unattended_upgrades(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    assert host.package("unattended-upgrades").is_installed
    dump = host.check_output("apt-config dump")
    problems = []
    for name in ("APT::Periodic::Unattended-Upgrade", "APT::Periodic::Update-Package-Lists"):
        # apt-config dump lists the effective value (the last assignment wins).
        values = re.findall(rf'^{re.escape(name)} "(.*)";$', dump, re.M)
        problems += standards.periodic_violations(name, values[-1] if values else "")
    origins = re.findall(r'^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', dump, re.M)
    problems += standards.update_origin_violations(origins)
    floors_met(problems)
    assert not re.findall(r'^Unattended-Upgrade::Allowed-Origins:: ', dump, re.M)


@pytest.mark.control("UPD-02", "The apt timers that run unattended-upgrades are enabled")
def test_update_timers(mail_host: tuple[str, Any]) -> None:
    host = mail_host[1]
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        state = host.run(f"systemctl is-enabled {timer}").stdout.strip()
        assert state == "enabled", f"{timer} is {state}"
        assert host.run(f"systemctl is-active {timer}").stdout.strip() == "active"


@pytest.mark.control("UPD-03", "unattended-upgrades reads the security-only origins")
def test_unattended_dry_run(mail_host: tuple[str, Any]) -> None:
    out = mail_host[1].run("unattended-upgrade --dry-run --debug 2>&1 | head -n 40")
    allowed = re.search(r"Allowed origins are: (.*)", out.stdout)
    assert allowed, out.stdout[-1000:]
    assert "security" in allowed.group(1).lower()
    assert re.search(r"o=Debian,n=bookworm(,|$)", allowed.group(1)) is None, \
        "the main archive is allowed, not only security"


# --- logs --------------------------------------------------------------------------------


def journald_effective(host: Any) -> dict[str, str]:
    """The [Journal] settings after drop-ins (the last assignment wins)."""
    out = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    cfg: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([A-Za-z]+)=(.*)$", line)
        if m:
            cfg[m.group(1)] = m.group(2).strip()
    return cfg


def to_days(value: str) -> float:
    m = re.fullmatch(r"(\d+)\s*(day|d|week|w|month|M|year|y|s)?", value)
    assert m, f"cannot read {value!r}"
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"day": 1, "d": 1, "week": 7, "w": 7, "month": 30.44, "M": 30.44,
                "year": 365.25, "y": 365.25, "s": 1 / 86400}[unit]


@pytest.mark.control("LOG-01", "The journal is persistent, kept >= policy.logs_retention_days")
def test_journal_retention(mail_host: tuple[str, Any], policy: dict[str, Any]) -> None:
    host = mail_host[1]
    cfg = journald_effective(host)
    assert cfg.get("Storage") == "persistent"
    days = to_days(cfg.get("MaxRetentionSec", "0"))
    assert days == 0 or days >= policy["logs_retention_days"], f"journal kept {days} days"
    assert host.file("/var/log/journal").is_directory
    # journald really writes there (not to the volatile /run/log/journal).
    assert host.run("ls /var/log/journal/*/system.journal").rc == 0


@pytest.mark.control("LOG-02", "rsyslog files (mail, auth) are kept >= the policy period")
def test_logrotate_retention(mail_host: tuple[str, Any], policy: dict[str, Any],
                             hvars: dict[str, Any]) -> None:
    host = mail_host[1]
    assert host.service("rsyslog").is_running
    conf = host.file("/etc/logrotate.d/rsyslog").content_string
    for path in ("/var/log/mail.log", "/var/log/auth.log"):
        assert path in conf and path in hvars["hardening__rsyslog_files"]
    interval = re.search(r"^\s*(daily|weekly|monthly|yearly)\s*$", conf, re.M)
    rotate = re.search(r"^\s*rotate\s+(\d+)\s*$", conf, re.M)
    assert interval and rotate, conf
    per = {"daily": 1, "weekly": 7, "monthly": 28, "yearly": 365}[interval.group(1)]
    kept = per * int(rotate.group(1))
    assert kept >= policy["logs_retention_days"], f"kept {kept} days"
    assert int(rotate.group(1)) == math.ceil(policy["logs_retention_days"] / per)
    # logrotate accepts the whole configuration, and its timer runs.
    assert host.run("logrotate -d /etc/logrotate.conf").rc == 0
    assert host.run("systemctl is-enabled logrotate.timer").stdout.strip() == "enabled"
