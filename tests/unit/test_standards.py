"""The independent floors of tests/infra/standards.py (issue 11, item 3).

Every check function turns red on a weakened input and stays green on a compliant one: the
permanent proof that a control built on it cannot pass a weakened deployment. The last tests
hold the roles' own defaults to the same floors, without a lab.
"""

from __future__ import annotations

import base64
import importlib.util
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
_PATH = REPO / "tests/infra/standards.py"
_spec = importlib.util.spec_from_file_location("standards", _PATH)
assert _spec and _spec.loader
std = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("standards", std)
_spec.loader.exec_module(std)

# Mozilla's list, typed again here (not read from standards.py) so a changed floor shows.
MOZILLA_TLS12 = [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
]
SLAPD_PRIORITY = ("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:"
                  "+AES-256-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:"
                  "+ECDHE-RSA:+DHE-RSA")


def defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "roles" / role / "defaults/main.yml").read_text("utf-8"))


# --- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "weakest"), [
    (">=TLSv1.2", "TLSv1.2"), (">=TLSv1.3", "TLSv1.3"),
    ("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", "TLSv1.2"),
    (">=TLSv1", "TLSv1"), ("!SSLv2, !SSLv3", "TLSv1"), ("", "SSLv2"),
])
def test_postfix_protocols_read(value: str, weakest: str) -> None:
    assert std.postfix_min_protocol(value) == weakest


def test_min_protocol_tls12_passes_tls10_and_11_fail() -> None:
    assert std.min_protocol_violations("TLSv1.2") == []
    assert std.min_protocol_violations("TLSv1.3") == []
    assert std.min_protocol_violations("TLSv1") != []
    assert std.min_protocol_violations("TLSv1.1") != []
    assert std.min_protocol_violations(std.postfix_min_protocol(">=TLSv1")) != []


def test_mozilla_ciphers_pass_an_added_weak_one_fails() -> None:
    assert std.tls12_cipher_violations(MOZILLA_TLS12) == []
    assert std.tls12_cipher_violations(MOZILLA_TLS12[:3]) == []  # a subset is stricter
    weakened = [*MOZILLA_TLS12, "AES128-SHA"]
    assert std.tls12_cipher_violations(weakened) == [
        "cipher AES128-SHA is not in Mozilla intermediate"]
    # What "HIGH" expands to (CBC, RSA key exchange) is not Mozilla's.
    assert std.tls12_cipher_violations(["ECDHE-RSA-AES256-SHA384", "AES256-GCM-SHA384"])
    assert std.tls12_cipher_violations([]) == ["no TLS 1.2 cipher suite at all"]


def test_groups_mozilla_pass_others_fail() -> None:
    assert std.group_violations(["X25519", "prime256v1", "secp256r1", "secp384r1"]) == []
    assert std.group_violations(["X448"]) != []
    assert std.group_violations(["secp521r1", "ffdhe2048"]) != []


def test_dh_size() -> None:
    assert std.dh_violations(2048) == [] and std.dh_violations(4096) == []
    assert std.dh_violations(1024) != []


def test_ldap_protocol_min() -> None:
    assert std.ldap_protocol_min_violations("3.3") == []
    assert std.ldap_protocol_min_violations("3.4") == []
    assert std.ldap_protocol_min_violations("3.1") != []  # TLS 1.0
    assert std.ldap_protocol_min_violations("") != []


def test_gnutls_priority_mozilla_passes() -> None:
    assert std.gnutls_priority_violations(SLAPD_PRIORITY) == []


@pytest.mark.parametrize("weakened", [
    SLAPD_PRIORITY + ":+VERS-TLS1.0",                        # an old protocol
    SLAPD_PRIORITY + ":+AES-128-CBC",                        # a CBC cipher
    SLAPD_PRIORITY + ":+SHA1",                               # a MAC beside AEAD
    SLAPD_PRIORITY + ":+RSA",                                # RSA key exchange (no PFS)
    SLAPD_PRIORITY + ":%SERVER_PRECEDENCE",                  # the server's order
    SLAPD_PRIORITY.replace(":-CIPHER-ALL", ""),              # NORMAL's ciphers (CBC...)
    SLAPD_PRIORITY.replace("-VERS-ALL:", ""),                # NORMAL's protocols
    "NORMAL",
    SLAPD_PRIORITY + ":+CIPHER-ALL",
])
def test_gnutls_priority_weakened_fails(weakened: str) -> None:
    assert std.gnutls_priority_violations(weakened), weakened


def test_certificate_floor() -> None:
    assert std.certificate_violations("EC", 256, "prime256v1", "ecdsa-with-SHA256", 365) == []
    assert std.certificate_violations("RSA", 2048, None, "sha256WithRSAEncryption", 90) == []
    assert std.certificate_violations("RSA", 1024, None, "sha256WithRSAEncryption", 90)
    assert std.certificate_violations("EC", 521, "secp521r1", "ecdsa-with-SHA512", 90)
    assert std.certificate_violations("RSA", 2048, None, "sha1WithRSAEncryption", 90)
    assert std.certificate_violations("EC", 256, "prime256v1", "ecdsa-with-SHA256", 3650)


# --- SSH ---------------------------------------------------------------------------------

SSHD_OK = {
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
                     "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
                     "diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256",
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
               "aes256-ctr,aes192-ctr,aes128-ctr",
    "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
            "umac-128-etm@openssh.com",
    "hostkeyalgorithms": "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
    "permitrootlogin": "without-password",
    "allowusers": "root",
    "maxauthtries": "3",
}


def test_sshd_compliant_passes() -> None:
    assert std.sshd_violations(SSHD_OK) == []
    assert std.ssh_access_violations(SSHD_OK, ["root"]) == []
    # Fewer algorithms is stricter, still fine.
    assert std.sshd_violations({**SSHD_OK, "kexalgorithms": "curve25519-sha256"}) == []


@pytest.mark.parametrize(("key", "weak"), [
    ("kexalgorithms", "diffie-hellman-group14-sha1"),
    ("kexalgorithms", "diffie-hellman-group1-sha1"),
    ("kexalgorithms", "ecdh-sha2-nistp256"),
    ("ciphers", "aes128-cbc"),
    ("ciphers", "3des-cbc"),
    ("macs", "hmac-sha1"),
    ("macs", "hmac-sha2-256"),  # encrypt-and-MAC, not -etm
    ("hostkeyalgorithms", "ssh-rsa"),
    ("hostkeyalgorithms", "ssh-dss"),
])
def test_sshd_weak_algorithm_fails(key: str, weak: str) -> None:
    weakened = {**SSHD_OK, key: SSHD_OK[key] + "," + weak}
    kind = {"kexalgorithms": "kex", "ciphers": "cipher", "macs": "mac",
            "hostkeyalgorithms": "host key"}[key]
    assert std.sshd_violations(weakened) == [f"{kind}: {weak} is not permitted"]


def test_ssh_moduli() -> None:
    line = "20230101000000 2 6 100 {} 2 C0FFEE"
    assert std.ssh_moduli_violations("\n".join(line.format(b) for b in (3071, 4095, 8191))) == []
    assert std.ssh_moduli_violations("# comment\n" + line.format(2047)) != []


@pytest.mark.parametrize("weakened", [
    {"permitrootlogin": "yes"},
    {"allowusers": ""},
    {"allowusers": "root *"},
    {"allowusers": "root quantri"},
    {"maxauthtries": "6"},
])
def test_ssh_access_weakened_fails(weakened: dict[str, str]) -> None:
    assert std.ssh_access_violations({**SSHD_OK, **weakened}, ["root"])


# --- firewall, OS, updates ---------------------------------------------------------------


def test_public_ports() -> None:
    assert std.public_port_violations({25, 465, 587, 993, 995}, serves_https=False) == []
    assert std.public_port_violations({25, 465, 587, 993, 995, 443}, serves_https=True) == []
    assert std.public_port_violations({25, 443}, serves_https=False) != []
    assert std.public_port_violations({25, 587, 22}, serves_https=True) != []
    assert std.public_port_violations({25, 143}, serves_https=True) != []


def test_sysctl_floors() -> None:
    good = {k: sorted(v)[-1] for k, v in std.SYSCTL_FLOORS.items()}
    assert std.sysctl_violations(good) == []
    assert std.sysctl_violations({**good, "extra.key": "7"}) == []
    assert std.sysctl_violations({**good, "net.ipv4.ip_forward": "1"}) != []
    assert std.sysctl_violations({**good, "kernel.randomize_va_space": "1"}) != []
    missing = dict(good)
    del missing["net.ipv4.tcp_syncookies"]
    assert std.sysctl_violations(missing) == ["net.ipv4.tcp_syncookies not set"]


def test_update_origins() -> None:
    security = ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
                "origin=Debian,codename=${distro_codename},label=Debian-Security"]
    assert std.update_origin_violations(security) == []
    # Debian's main archive (every update, not only security ones) is refused.
    assert std.update_origin_violations(
        [*security, "origin=Debian,codename=${distro_codename},label=Debian"]) != []
    assert std.update_origin_violations([]) != []
    assert std.periodic_violations("APT::Periodic::Unattended-Upgrade", "1") == []
    assert std.periodic_violations("APT::Periodic::Unattended-Upgrade", "7") != []
    assert std.periodic_violations("APT::Periodic::Unattended-Upgrade", "0") != []


# --- fail2ban, DKIM, DMARC, the password page's sandbox, backups ---------------------------


def test_fail2ban_floor() -> None:
    assert std.fail2ban_violations("sshd", 3600, 600, 5, lockout_failures=5) == []
    assert std.fail2ban_violations("sshd", -1, 600, 3, lockout_failures=5) == []  # permanent
    assert std.fail2ban_violations("sshd", 60, 600, 5, lockout_failures=5) != []
    assert std.fail2ban_violations("sshd", 3600, 60, 5, lockout_failures=5) != []
    assert std.fail2ban_violations("dovecot", 3600, 600, 20, lockout_failures=12) != []
    # The regulation's lockout is stricter than fail2ban's default: the ban comes first.
    assert std.fail2ban_violations("sshd", 3600, 600, 5, lockout_failures=3) != []


def _dkim_record(bits: int, extra: str = "") -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa;{extra} p={base64.b64encode(der).decode()}"


def test_dkim_record_floor() -> None:
    assert std.dkim_record_violations(_dkim_record(2048)) == []
    assert std.dkim_record_violations(_dkim_record(1024)) == ["RSA key of 1024 bits < 2048"]
    assert std.dkim_record_violations(_dkim_record(2048, " t=y;")) != []
    assert std.dkim_record_violations(_dkim_record(2048, " h=sha1;")) != []
    assert std.dkim_record_violations(_dkim_record(2048, " h=sha256;")) == []
    assert std.dkim_record_violations("v=DKIM1; k=rsa; p=") != []


def test_opendmarc_floor() -> None:
    conf = "# OpenDMARC\nAuthservID mail1\nRejectFailures true\nSPFSelfValidate true\n"
    assert std.opendmarc_violations(conf) == []
    assert std.opendmarc_violations(conf.replace("RejectFailures true",
                                                 "RejectFailures false")) != []
    assert std.opendmarc_violations(conf.replace("RejectFailures true\n", "")) != []


SANDBOX_OK = {"User": "mailgov-selfservice", "NoNewPrivileges": "yes",
              "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
              "CapabilityBoundingSet": ""}
PASSWD_OK = "mailgov-selfservice:x:999:997::/nonexistent:/usr/sbin/nologin"


@pytest.mark.parametrize(("props", "passwd"), [
    ({"User": "root"}, "root:x:0:0:root:/root:/bin/bash"),
    ({"User": "www-data"}, "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin"),
    ({"ProtectSystem": "full"}, PASSWD_OK),
    ({"NoNewPrivileges": "no"}, PASSWD_OK),
    ({"CapabilityBoundingSet": "cap_net_bind_service"}, PASSWD_OK),
    ({}, "mailgov-selfservice:x:1001:1001::/home/m:/bin/bash"),
])
def test_sandbox_weakened_fails(props: dict[str, str], passwd: str) -> None:
    assert std.sandbox_violations(SANDBOX_OK, PASSWD_OK) == []
    assert std.sandbox_violations({**SANDBOX_OK, **props}, passwd)


def test_backup_schedule_floor() -> None:
    start = datetime(2026, 12, 6, 2, 30)
    weekly = [start + timedelta(days=7 * i) for i in range(6)]
    daily = [start + timedelta(days=i) for i in range(6)]
    monthly = [datetime(2026, m, 1, 2, 30) for m in range(1, 7)]
    assert std.backup_schedule_violations("weekly", weekly) == []
    assert std.backup_schedule_violations("weekly", daily) == []  # more often is stricter
    assert std.backup_schedule_violations("weekly", monthly) != []
    assert std.backup_schedule_violations("daily", weekly) != []
    assert std.backup_schedule_violations("monthly", monthly) == []
    assert std.backup_schedule_violations("weekly", weekly[:1]) != []


# --- the roles' own defaults meet the floors (a weakened default is red here too) ----------


def test_role_tls_defaults_meet_mozilla() -> None:
    for role, prefix in (("postfix", "postfix__"), ("dovecot", "dovecot__")):
        d = defaults(role)
        assert std.min_protocol_violations(d[f"{prefix}tls_min_protocol"]) == [], role
        assert std.tls12_cipher_violations(d[f"{prefix}tls_ciphers"].split(":")) == [], role
        assert d[f"{prefix}tls_prefer_server_ciphers"] is std.TLS_PREFER_SERVER_CIPHERS
    ol = defaults("openldap")
    assert std.ldap_protocol_min_violations(ol["openldap__tls_protocol_min"]) == []
    assert std.gnutls_priority_violations(ol["openldap__tls_cipher_suite"]) == []
    # Key exchange groups (OpenSSL names; slapd's GnuTLS names): some, none outside Mozilla's.
    for role in ("postfix", "dovecot", "nginx", "openldap"):
        groups = defaults(role)[f"{role}__tls_groups"]
        assert groups and std.group_violations(groups) == [], role
    assert ol["openldap__simple_bind_min_ssf"] >= std.LDAP_SIMPLE_BIND_MIN_SSF


def test_role_hardening_defaults_meet_floors() -> None:
    d = defaults("hardening")
    # The host key algorithms follow the host key types (a template in defaults/main.yml).
    import jinja2

    host_keys = jinja2.Environment().from_string(d["hardening__ssh_host_key_algorithms"]).render(
        hardening__ssh_host_key_types=d["hardening__ssh_host_key_types"])
    cfg = {"kexalgorithms": ",".join(d["hardening__ssh_kex_algorithms"]),
           "ciphers": ",".join(d["hardening__ssh_ciphers"]),
           "macs": ",".join(d["hardening__ssh_macs"]),
           "hostkeyalgorithms": ",".join(yaml.safe_load(host_keys))}
    assert cfg["hostkeyalgorithms"] == "ssh-ed25519"
    # Post-quantum key exchange only unless the data re-admits the classical ones (SSH-08).
    assert set(d["hardening__ssh_kex_algorithms"]) <= std.SSH_KEX_POST_QUANTUM
    assert d["hardening__ssh_classical_kex"] is False
    assert std.algorithm_violations("kex", d["hardening__ssh_classical_kex_algorithms"],
                                    std.SSH_KEX) == []
    assert std.sshd_violations(cfg) == []
    # With group exchange offered (the classical list re-admits it), the moduli the role
    # leaves meet ssh-audit's size.
    kex = d["hardening__ssh_kex_algorithms"] + d["hardening__ssh_classical_kex_algorithms"]
    if any(k.startswith("diffie-hellman-group-exchange") for k in kex):
        assert d["hardening__ssh_moduli_min_bits"] >= std.SSH_DH_MODULUS_MIN_BITS
    assert d["hardening__ssh_max_auth_tries"] <= std.SSH_MAX_AUTH_TRIES
    settings = {k: str(v) for k, v in d["hardening__sysctl_settings"].items()}
    assert std.sysctl_violations(settings) == []
    assert std.update_origin_violations(d["hardening__updates_origins"]) == []


def _seconds(value: Any) -> int:
    text = str(value)
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}.get(text[-1], 1)
    return int(text.rstrip("smhdw")) * unit


def test_role_security_defaults_meet_floors() -> None:
    f2b = defaults("fail2ban")
    assert set(f2b["fail2ban__jails"]) >= std.F2B_JAILS
    assert std.fail2ban_violations("default", _seconds(f2b["fail2ban__bantime"]),
                                   _seconds(f2b["fail2ban__findtime"]),
                                   int(f2b["fail2ban__maxretry"]), lockout_failures=5) == []
    ma = defaults("mailauth")
    assert ma["mailauth__dkim_key_bits"] >= std.DKIM_RSA_MIN_BITS
    assert ma["mailauth__dmarc_reject_failures"] is True


def test_a_weakened_default_is_caught() -> None:
    """The point of item 3: the role's value weakened is red, not a copy of itself."""
    d = defaults("postfix")
    weakened = d["postfix__tls_ciphers"] + ":AES128-SHA"
    assert std.tls12_cipher_violations(weakened.split(":"))
    assert std.min_protocol_violations("TLSv1")
    assert std.group_violations([*d["postfix__tls_groups"], "X448"])
    assert std.group_violations([*defaults("openldap")["openldap__tls_groups"], "FFDHE2048"])
    h = defaults("hardening")
    assert std.sshd_violations({"kexalgorithms": ",".join(h["hardening__ssh_kex_algorithms"]),
                                "ciphers": ",".join([*h["hardening__ssh_ciphers"],
                                                     "aes128-cbc"]),
                                "macs": ",".join(h["hardening__ssh_macs"]),
                                "hostkeyalgorithms": "ssh-rsa"})


def test_served_certificate_floor() -> None:
    """TLS-08: 30 days left at least, 366 days of life at most; red on either side."""
    now = datetime(2027, 1, 1)
    ok = std.served_certificate_violations(now - timedelta(days=300),
                                           now + timedelta(days=31), now)
    assert ok == []
    late = std.served_certificate_violations(now - timedelta(days=300),
                                                   now + timedelta(days=29), now)
    assert late == ["expires in 29.0 days (< 30), on 2027-01-30"]
    long = std.served_certificate_violations(now - timedelta(days=100),
                                                   now + timedelta(days=725), now)
    assert long == ["lifetime 825 days > 366"]  # the lab's old pki__cert_days


def test_host_audit_floors() -> None:
    """Issue 19 item 3: each host-audit check is red on a weakened input, green on the role's
    defaults rendered as the host would have them."""
    h = defaults("hardening")
    rules = "\n".join(f"-w {w['path']} -p wa -k {w['key']}" for w in h["hardening__audit_watches"])
    assert std.audit_watch_violations(rules) == []
    assert std.audit_watch_violations(rules.replace("-w /etc/shadow -p wa", "-w /etc/shadow -p r"))
    assert std.audit_watch_violations(rules.replace("-w /etc/postfix ", "-w /etc/postfix.old "))
    conf = "\n".join(f"install {m} /bin/false\nblacklist {m}"
                     for m in h["hardening__kernel_modules_blocked"])
    assert std.module_block_violations(conf.replace("-", "_")) == []  # modprobe's spelling
    assert std.module_block_violations(conf.replace("install sctp /bin/false", ""))
    assert std.module_block_violations(conf.replace("blacklist dccp", ""))
    ld = {k: str(v) for k, v in h["hardening__login_defs_settings"].items()}
    ld["UMASK"] = h["hardening__umask"]
    assert std.login_defs_violations(ld) == []
    for key, bad in (("PASS_MAX_DAYS", "99999"), ("PASS_MIN_DAYS", "0"), ("PASS_WARN_AGE", "3"),
                     ("ENCRYPT_METHOD", "MD5"), ("YESCRYPT_COST_FACTOR", "3"), ("UMASK", "022")):
        assert std.login_defs_violations({**ld, key: bad}), key
    assert std.login_defs_violations({**ld, "ENCRYPT_METHOD": "SHA512",
                                      "SHA_CRYPT_MIN_ROUNDS": "1000"})
    assert std.login_defs_settings("#PASS_MAX_DAYS 1\nPASS_MAX_DAYS\t99\n") == {
        "PASS_MAX_DAYS": "99"}
    assert std.banner_violations(h["hardening__banner_text"]) == []
    assert std.banner_violations(h["hardening__banner_text"] + "\nDebian GNU/Linux 12 \\n \\l")
    assert std.banner_violations("WARNING: authorised users only. Activity is monitored.")
    assert std.systemd_exposure_violations("x.service", 4.9, "OK") == []
    assert std.systemd_exposure_violations("x.service", 5.0, "MEDIUM")
    assert std.systemd_exposure_violations("x.service", 9.6, "UNSAFE")
