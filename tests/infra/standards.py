"""Independent floors for the security controls (issue 11, item 3).

The controls in tests/infra must not take their security-relevant expected values from the
roles' defaults: a weakened default would then pass its own test. The values below are
written ONCE here, each from the standard it cites (named as text; nothing is fetched), and
the check functions say whether a deployed value is AT LEAST AS STRICT as the floor: deployed
ciphers within the allowed set, minimum protocol not below TLS 1.2, key sizes not below the
minimum, and so on. A role may be stricter than a floor; it may never be weaker.

Deployment facts (host names, paths, which host serves HTTPS) still come from the inventory;
the regulation's numbers come from the data file's `policy:` section (data/mailboxes.yaml),
which the tests read themselves.

Every `*_violations` function is pure: it returns the list of ways the input is weaker than
the floor (empty: compliant). tests/unit/test_standards.py proves each one turns red on a
weakened input and green on a compliant one.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

# =================================================================================== TLS ====
# Source: Mozilla, "Security/Server Side TLS" (wiki.mozilla.org/Security/Server_Side_TLS),
# configuration "Intermediate compatibility (recommended)", guidelines version 5.7.

# "Protocols: TLS 1.2, TLS 1.3".
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
TLS_MIN_PROTOCOL = "TLSv1.2"
# Order of the protocol names, weakest first (for "at least TLS 1.2").
_TLS_ORDER = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

# "TLS 1.2 Cipher suites" (OpenSSL names), in Mozilla's order.
TLS12_CIPHERS = frozenset({
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
})

# "TLS 1.3 Cipher suites": TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
# TLS_CHACHA20_POLY1305_SHA256.
TLS13_CIPHERSUITES = frozenset({
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
})

# "TLS curves: X25519, prime256v1, secp384r1" (the key exchange groups).
TLS_GROUPS = frozenset({"X25519", "prime256v1", "secp384r1"})
# Other spellings of the same groups (OpenSSL, GnuTLS, IANA).
_GROUP_ALIASES = {"x25519": "X25519", "secp256r1": "prime256v1", "p-256": "prime256v1",
                  "prime256v1": "prime256v1", "secp384r1": "secp384r1", "p-384": "secp384r1"}
# Groups outside that list that a server could still accept (probed from the client).
TLS_GROUPS_OUTSIDE = ("X448", "secp521r1", "ffdhe2048", "ffdhe3072", "ffdhe4096")

# "DH parameter size: 2048 (ffdhe2048, RFC 7919)" for the DHE suites: at least 2048 bits.
TLS_DH_MIN_BITS = 2048

# "Cipher preference: client chooses" (no server preference).
TLS_PREFER_SERVER_CIPHERS = False

# "Certificate type: ECDSA (P-256) (recommended), or RSA (2048 bits)";
# "Certificate curves: prime256v1, secp384r1".
TLS_CERT_RSA_MIN_BITS = 2048
TLS_CERT_EC_CURVES = frozenset({"prime256v1", "secp384r1"})
# "Certificate signature: sha256WithRSAEncryption, ecdsa-with-SHA256, ecdsa-with-SHA384,
# ecdsa-with-SHA512".
TLS_CERT_SIGNATURES = frozenset({"sha256WithRSAEncryption", "ecdsa-with-SHA256",
                                 "ecdsa-with-SHA384", "ecdsa-with-SHA512"})
# "Maximum certificate lifespan: 366 days".
TLS_CERT_MAX_DAYS = 366
# A served certificate keeps at least 30 days: ACME clients renew at that point (certbot's
# renew_before_expiry default, Let's Encrypt's guidance: "renew when 30 days remain"), and the
# security-gaps issue's expiry control fails below it.
TLS_CERT_MIN_REMAINING_DAYS = 30

# slapd (Debian builds it with GnuTLS) takes a GnuTLS priority string: the same Mozilla
# intermediate list in GnuTLS's keywords (GnuTLS manual, "Priority strings"): TLS 1.2/1.3,
# AES-GCM and ChaCha20-Poly1305 (AEAD, so no separate MAC), ECDHE/DHE key exchange.
GNUTLS_VERSIONS = frozenset({"VERS-TLS1.2", "VERS-TLS1.3"})
GNUTLS_CIPHERS = frozenset({"AES-128-GCM", "AES-256-GCM", "CHACHA20-POLY1305"})
GNUTLS_MACS = frozenset({"AEAD"})
GNUTLS_KX = frozenset({"ECDHE-ECDSA", "ECDHE-RSA", "DHE-RSA"})
# slapd's olcTLSProtocolMin for TLS 1.2 (OpenLDAP slapd-config(5): 3.3 = TLS 1.2).
LDAP_TLS_PROTOCOL_MIN = (3, 3)
# olcSecurity simple_bind: RFC 4513 section 6.3.1 (simple bind only under confidentiality
# protection). 64 is the OpenLDAP Administrator's Guide's example ("security ... simple_bind=64",
# section "Security Strength Factors"): refuses plain ldap:// (SSF 0), admits every TLS suite
# above and ldapi (71).
LDAP_SIMPLE_BIND_MIN_SSF = 64


def _protocol_rank(name: str) -> int:
    try:
        return _TLS_ORDER.index(name)
    except ValueError:
        raise ValueError(f"unknown protocol {name!r}") from None


def postfix_min_protocol(value: str) -> str:
    """The weakest protocol a Postfix `*_tls_protocols` value admits.

    Postfix takes `>=TLSv1.2` (3.6+) or an exclusion list (`!SSLv2, !SSLv3, !TLSv1`).
    """
    text = value.strip()
    if not text:
        return _TLS_ORDER[0]  # empty: everything the library offers
    m = re.fullmatch(r">=\s*(\S+)", text)
    if m:
        _protocol_rank(m.group(1))
        return m.group(1)
    excluded = {t.lstrip("!") for t in re.split(r"[\s,:]+", text) if t.startswith("!")}
    included = {t for t in re.split(r"[\s,:]+", text) if t and not t.startswith("!")}
    admitted = [p for p in _TLS_ORDER if p not in excluded and (not included or p in included)]
    if not admitted:
        raise ValueError(f"{value!r} admits no protocol")
    return admitted[0]


def min_protocol_violations(protocol: str) -> list[str]:
    """The weakest accepted protocol must be TLS 1.2 or newer."""
    if _protocol_rank(protocol) < _protocol_rank(TLS_MIN_PROTOCOL):
        return [f"minimum protocol {protocol} is below {TLS_MIN_PROTOCOL}"]
    return []


def tls12_cipher_violations(ciphers: Iterable[str]) -> list[str]:
    """Every TLS 1.2 suite enabled (OpenSSL names, after expansion) must be Mozilla's."""
    got = [c for c in ciphers if c]
    if not got:
        return ["no TLS 1.2 cipher suite at all"]
    return [f"cipher {c} is not in Mozilla intermediate" for c in got if c not in TLS12_CIPHERS]


def group_violations(accepted: Iterable[str]) -> list[str]:
    """Every key exchange group a server accepts must be Mozilla's."""
    out = []
    for g in accepted:
        if _GROUP_ALIASES.get(g.lower(), g) not in TLS_GROUPS:
            out.append(f"group {g} is not in Mozilla intermediate "
                       f"({', '.join(sorted(TLS_GROUPS))})")
    return out


def dh_violations(bits: int) -> list[str]:
    return [] if bits >= TLS_DH_MIN_BITS else [f"DH group of {bits} bits < {TLS_DH_MIN_BITS}"]


def ldap_protocol_min_violations(value: str) -> list[str]:
    """olcTLSProtocolMin (major.minor, 3.3 = TLS 1.2) must be at least TLS 1.2."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", value)
    if not m:
        return [f"olcTLSProtocolMin {value!r} is not major.minor"]
    if (int(m.group(1)), int(m.group(2))) < LDAP_TLS_PROTOCOL_MIN:
        return [f"olcTLSProtocolMin {value} is below 3.3 (TLS 1.2)"]
    return []


_GNUTLS_CATEGORIES: dict[str, tuple[str, frozenset[str]]] = {
    # category -> (the name of its "-X-ALL" reset, allowed members)
    "version": ("VERS-ALL", GNUTLS_VERSIONS),
    "cipher": ("CIPHER-ALL", GNUTLS_CIPHERS),
    "mac": ("MAC-ALL", GNUTLS_MACS),
    "kx": ("KX-ALL", GNUTLS_KX),
}
_GNUTLS_MACS = {"AEAD", "SHA1", "SHA256", "SHA384", "SHA512", "MD5", "UMAC-96", "UMAC-128",
                "GOSTR341194", "STREEBOG-256", "STREEBOG-512", "AES-128-GMAC"}
_GNUTLS_KX = {"RSA", "RSA-EXPORT", "DHE-RSA", "DHE-DSS", "ECDHE-RSA", "ECDHE-ECDSA", "PSK",
              "DHE-PSK", "ECDHE-PSK", "RSA-PSK", "SRP", "SRP-RSA", "SRP-DSS", "ANON-DH",
              "ANON-ECDH", "VKO-GOST-12"}
# Base keywords whose own lists include more than Mozilla's (every one does): a category is
# only restricted when the string resets it ("-CIPHER-ALL") and adds allowed members.
_GNUTLS_BASES = {"NORMAL", "PERFORMANCE", "SECURE128", "SECURE192", "SECURE256", "SUITEB128",
                 "SUITEB192", "LEGACY", "PFS", "SYSTEM", "NONE"}


def _gnutls_category(name: str) -> str | None:
    if name.startswith("VERS-"):
        return "version"
    if name in _GNUTLS_MACS:
        return "mac"
    if name in _GNUTLS_KX:
        return "kx"
    if re.match(r"(AES|CAMELLIA|CHACHA20|3DES|ARCFOUR|NULL|GOST|MAGMA|KUZNYECHIK|DES)", name):
        return "cipher"
    return None


def gnutls_priority_violations(priority: str) -> list[str]:
    """A GnuTLS priority string (slapd's olcTLSCipherSuite) against Mozilla intermediate.

    Each of protocol versions, ciphers, MACs and key exchanges must be reset (`-X-ALL`) and
    then only allowed members added; `%SERVER_PRECEDENCE` (server's order) is refused.
    Signature algorithms, groups and the rest are not judged here (groups: probed live).
    """
    tokens = [t for t in re.split(r"[:\s]+", priority.strip()) if t]
    if not tokens:
        return ["empty priority string"]
    out: list[str] = []
    if tokens[0] not in _GNUTLS_BASES:
        out.append(f"priority string starts with {tokens[0]!r}, not a base keyword")
    reset: set[str] = set()
    added: dict[str, list[str]] = {c: [] for c in _GNUTLS_CATEGORIES}
    for tok in tokens[1:]:
        if tok.startswith("%"):
            if tok == "%SERVER_PRECEDENCE":
                out.append("%SERVER_PRECEDENCE: the server's order, Mozilla says client chooses")
            continue
        sign, name = tok[0], tok[1:]
        if sign not in "+-!":
            out.append(f"cannot read {tok!r}")
            continue
        for cat, (all_name, _) in _GNUTLS_CATEGORIES.items():
            if name == all_name:
                if sign == "+":
                    out.append(f"{tok} enables every {cat}")
                else:
                    reset.add(cat)
                    added[cat] = []
                break
        else:
            if name.endswith("-ALL"):
                continue  # SIGN-ALL, GROUP-ALL, CTYPE-ALL, COMP-ALL: not judged here
            cat = _gnutls_category(name)
            if cat is None:
                if name.startswith(("SIGN-", "GROUP-", "CURVE-", "CTYPE-", "COMP-")):
                    continue
                out.append(f"unknown priority keyword {tok!r}")
            elif sign == "+":
                added[cat].append(name)
            else:
                added[cat] = [a for a in added[cat] if a != name]
    for cat, (all_name, allowed) in _GNUTLS_CATEGORIES.items():
        if cat not in reset:
            out.append(f"{cat}s not restricted (no -{all_name}): the base keyword's apply")
            continue
        if not added[cat]:
            out.append(f"no {cat} enabled")
        out += [f"{cat} {a} is not in Mozilla intermediate" for a in added[cat]
                if a not in allowed]
    return out


def certificate_violations(key_type: str, bits: int, curve: str | None, signature: str,
                           lifetime_days: float) -> list[str]:
    """A server certificate against Mozilla intermediate's certificate requirements.

    key_type "RSA" or "EC"; curve the EC curve's OpenSSL name (prime256v1, secp384r1).
    """
    out = []
    if key_type == "RSA":
        if bits < TLS_CERT_RSA_MIN_BITS:
            out.append(f"RSA key of {bits} bits < {TLS_CERT_RSA_MIN_BITS}")
    elif key_type == "EC":
        if _GROUP_ALIASES.get((curve or "").lower(), curve) not in TLS_CERT_EC_CURVES:
            out.append(f"EC curve {curve} is not one of {sorted(TLS_CERT_EC_CURVES)}")
    else:
        out.append(f"key type {key_type} is neither RSA nor ECDSA")
    if signature not in TLS_CERT_SIGNATURES:
        out.append(f"signature {signature} is not one of {sorted(TLS_CERT_SIGNATURES)}")
    if lifetime_days > TLS_CERT_MAX_DAYS:
        out.append(f"lifetime {lifetime_days:.0f} days > {TLS_CERT_MAX_DAYS}")
    return out


# =================================================================================== SSH ====
# Source: ssh-audit, "Hardening Guides" (ssh-audit.com/hardening_guides.html), "Debian 12
# Bookworm Server (OpenSSH 9.2)": the KexAlgorithms, Ciphers, MACs and HostKeyAlgorithms
# lines (GSSAPI entries left out: no Kerberos here). A deployed list may be a subset.
SSH_KEX = frozenset({
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
})
# The hybrid post-quantum key exchanges of OpenSSH: sntrup761x25519 (default since 9.0, the
# release notes: "protection against 'capture now, decrypt later' attacks") and, from 9.9,
# ML-KEM768 + X25519. Without the data's policy.admin_ssh.classical_kex, only these.
SSH_KEX_POST_QUANTUM = frozenset({
    "sntrup761x25519-sha512@openssh.com",
    "sntrup761x25519-sha512",
    "mlkem768x25519-sha256",
})
# Host key types without ECDSA (NIST curves whose generation is unexplained) or DSA:
# Ed25519, and RSA of at least SSH_RSA_HOST_KEY_MIN_BITS (the security-gaps issue, ssh-audit).
SSH_HOST_KEY_TYPES = frozenset({"ED25519", "RSA"})
SSH_CIPHERS = frozenset({
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
})
# Encrypt-then-MAC with SHA-2 or UMAC-128 only (no SHA-1, no MD5, no encrypt-and-MAC).
SSH_MACS = frozenset({
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
})
# ssh-audit's host key list, plus ecdsa-sha2-nistp256, which Mozilla's "OpenSSH" guidelines
# (infosec.mozilla.org/guidelines/openssh, "Modern": HostKey ssh_host_ecdsa_key) keep. Never
# ssh-rsa (RSA with SHA-1) or ssh-dss.
SSH_HOST_KEY_ALGORITHMS = frozenset({
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ecdsa-sha2-nistp256",
})
# ssh-audit's guide, "Remove small Diffie-Hellman moduli": with group exchange offered, every
# modulus in /etc/ssh/moduli has at least 3072 bits (its column 5 is the size minus one).
SSH_DH_MODULUS_MIN_BITS = 3072
# RSA host keys: ssh-audit warns below 3072 bits (NIST SP 800-57 Part 1 Rev. 5, Table 2:
# RSA 3072 for 128-bit security).
SSH_RSA_HOST_KEY_MIN_BITS = 3072

# CIS Debian Linux 12 Benchmark, "Ensure sshd MaxAuthTries is configured": 4 or less.
SSH_MAX_AUTH_TRIES = 4
# SSH-02's own definition, "root never logs in with a password": PermitRootLogin no or
# prohibit-password (sshd_config(5); `sshd -T` prints the latter as without-password).
SSH_PERMIT_ROOT_LOGIN = frozenset({"no", "prohibit-password", "without-password"})


def algorithm_violations(kind: str, offered: Iterable[str], allowed: frozenset[str]) -> list[str]:
    """An offered algorithm list (kex, ciphers, macs, host keys) must be within `allowed`."""
    got = [a for a in offered if a]
    if not got:
        return [f"no {kind} offered"]
    return [f"{kind}: {a} is not permitted" for a in got if a not in allowed]


def sshd_violations(cfg: Mapping[str, str]) -> list[str]:
    """`sshd -T` (lower-case keys) against the permitted algorithm lists."""
    out: list[str] = []
    for key, kind, allowed in (("kexalgorithms", "kex", SSH_KEX),
                               ("ciphers", "cipher", SSH_CIPHERS),
                               ("macs", "mac", SSH_MACS),
                               ("hostkeyalgorithms", "host key", SSH_HOST_KEY_ALGORITHMS)):
        out += algorithm_violations(kind, cfg.get(key, "").split(","), allowed)
    return out


def ssh_moduli_violations(moduli: str) -> list[str]:
    """/etc/ssh/moduli: no modulus under SSH_DH_MODULUS_MIN_BITS (when group exchange is on)."""
    small = []
    for line in moduli.splitlines():
        fields = line.split()
        if len(fields) >= 7 and not line.lstrip().startswith("#"):
            bits = int(fields[4]) + 1  # the file stores the size minus one
            if bits < SSH_DH_MODULUS_MIN_BITS:
                small.append(bits)
    if small:
        return [f"{len(small)} moduli under {SSH_DH_MODULUS_MIN_BITS} bits "
                f"(smallest {min(small)})"]
    return []


def ssh_access_violations(cfg: Mapping[str, str], login_users: Iterable[str]) -> list[str]:
    """SSH-02: root never with a password, AllowUsers only the login users, MaxAuthTries."""
    out = []
    if cfg.get("permitrootlogin") not in SSH_PERMIT_ROOT_LOGIN:
        out.append(f"PermitRootLogin {cfg.get('permitrootlogin')} lets root use a password")
    allowed = cfg.get("allowusers", "").split()
    if not allowed:
        out.append("no AllowUsers: every account may log in")
    if any(ch in u for u in allowed for ch in "*?!"):
        out.append(f"AllowUsers has patterns: {allowed}")
    if set(allowed) - set(login_users):
        out.append(f"AllowUsers {allowed} admits more than {sorted(login_users)}")
    tries = cfg.get("maxauthtries", "")
    if not tries.isdigit() or int(tries) > SSH_MAX_AUTH_TRIES:
        out.append(f"MaxAuthTries {tries} > {SSH_MAX_AUTH_TRIES}")
    return out


# ============================================================================== firewall ====
# The ports a mail server must offer to everyone: SMTP 25 (RFC 5321), submission 587
# (RFC 6409), submissions 465, IMAPS 993, POP3S 995 (RFC 8314, "implicit TLS"). HTTPS 443 only
# where a web service of the mail system lives: the MTA-STS policy (RFC 8461, section 3.3)
# and the password page, on the primary MX.
PUBLIC_MAIL_PORTS = frozenset({25, 465, 587, 993, 995})
PUBLIC_HTTPS_PORT = 443
# Never public: SSH (CIS Debian Linux 12 Benchmark, "Ensure sshd access is configured": admin
# access only), LDAP 389/636 (the directory is internal), cleartext IMAP/POP3 143/110
# (RFC 8314, section 3: cleartext mail access is to be replaced by TLS).
NEVER_PUBLIC_PORTS = frozenset({22, 110, 143, 389, 636})


def public_port_violations(ports: Iterable[int], serves_https: bool) -> list[str]:
    allowed = PUBLIC_MAIL_PORTS | ({PUBLIC_HTTPS_PORT} if serves_https else set())
    got = set(ports)
    if not got:
        return ["no public port: the mail service is unreachable"]
    return [f"port {p} is open to everyone" + (" (must never be public)"
                                               if p in NEVER_PUBLIC_PORTS else "")
            for p in sorted(got) if p not in allowed]


# ==================================================================================== OS ====
# Kernel settings, each with the values that are at least as strict as the benchmark's.
# Sources: CIS Debian Linux 12 Benchmark, "Configure Network Kernel Parameters" (IPv4/IPv6
# forwarding off, no redirects sent or accepted, no source routing, martians logged, broadcast
# and bogus ICMP ignored, reverse path filtering, TCP SYN cookies, no router advertisements)
# and "Configure Additional Process Hardening" (ASLR 2, ptrace_scope restricted, core dumps
# restricted: fs.suid_dumpable 0); DISA Canonical Ubuntu 22.04 LTS STIG (the Debian-family
# STIG): kernel.dmesg_restrict 1, kernel.kptr_restrict 1 or more, fs.protected_symlinks and
# fs.protected_hardlinks 1.
SYSCTL_FLOORS: dict[str, frozenset[str]] = {
    "net.ipv4.ip_forward": frozenset({"0"}),
    "net.ipv6.conf.all.forwarding": frozenset({"0"}),
    "net.ipv4.conf.all.send_redirects": frozenset({"0"}),
    "net.ipv4.conf.default.send_redirects": frozenset({"0"}),
    "net.ipv4.icmp_ignore_bogus_error_responses": frozenset({"1"}),
    "net.ipv4.icmp_echo_ignore_broadcasts": frozenset({"1"}),
    "net.ipv4.conf.all.accept_redirects": frozenset({"0"}),
    "net.ipv4.conf.default.accept_redirects": frozenset({"0"}),
    "net.ipv6.conf.all.accept_redirects": frozenset({"0"}),
    "net.ipv6.conf.default.accept_redirects": frozenset({"0"}),
    "net.ipv4.conf.all.secure_redirects": frozenset({"0"}),
    "net.ipv4.conf.default.secure_redirects": frozenset({"0"}),
    "net.ipv4.conf.all.rp_filter": frozenset({"1"}),
    "net.ipv4.conf.default.rp_filter": frozenset({"1"}),
    "net.ipv4.conf.all.accept_source_route": frozenset({"0"}),
    "net.ipv4.conf.default.accept_source_route": frozenset({"0"}),
    "net.ipv6.conf.all.accept_source_route": frozenset({"0"}),
    "net.ipv4.conf.all.log_martians": frozenset({"1"}),
    "net.ipv4.conf.default.log_martians": frozenset({"1"}),
    "net.ipv4.tcp_syncookies": frozenset({"1"}),
    "net.ipv6.conf.all.accept_ra": frozenset({"0"}),
    "net.ipv6.conf.default.accept_ra": frozenset({"0"}),
    "kernel.randomize_va_space": frozenset({"2"}),
    "kernel.yama.ptrace_scope": frozenset({"1", "2", "3"}),
    "fs.suid_dumpable": frozenset({"0"}),
    "kernel.dmesg_restrict": frozenset({"1"}),
    "kernel.kptr_restrict": frozenset({"1", "2"}),
    "fs.protected_symlinks": frozenset({"1"}),
    "fs.protected_hardlinks": frozenset({"1"}),
}


def sysctl_violations(settings: Mapping[str, str]) -> list[str]:
    """Every floor key set, to one of its acceptable values (more keys are fine)."""
    out = []
    for key, ok in SYSCTL_FLOORS.items():
        got = settings.get(key)
        if got is None:
            out.append(f"{key} not set")
        elif str(got).strip() not in ok:
            out.append(f"{key} = {got}, must be {' or '.join(sorted(ok))}")
    return out


# ============================================================================ host audit ====
# Sources: CIS Debian Linux 12 Benchmark v1.1.0, "Configure auditd Rules": "Ensure changes to
# system administration scope (sudoers) is collected" (-w /etc/sudoers -p wa, -w
# /etc/sudoers.d -p wa) and "Ensure events that modify user/group information are collected"
# (-w /etc/group, /etc/passwd, /etc/gshadow, /etc/shadow -p wa). Issue 19 adds the mail,
# directory and project configuration (the ministry's regulation: changes to the mail system
# are recorded). Every watched path must be watched for writes (w) and attribute changes (a).
AUDIT_WATCHED_PATHS = frozenset({
    "/etc/sudoers", "/etc/sudoers.d",
    "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow",
    "/etc/ldap", "/etc/postfix", "/etc/dovecot", "/etc/mailgov",
})
AUDIT_WATCH_PERMS = frozenset("wa")


def audit_watch_violations(rules_text: str) -> list[str]:
    """AUD-01: every path of AUDIT_WATCHED_PATHS has a `-w PATH -p ...` rule with w and a."""
    perms: dict[str, set[str]] = {}
    for line in rules_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "-w":
            p = words[words.index("-p") + 1] if "-p" in words[:-1] else "rwxa"
            perms.setdefault(words[1].rstrip("/"), set()).update(p)
    out = []
    for path in sorted(AUDIT_WATCHED_PATHS):
        if path not in perms:
            out.append(f"{path} not watched")
        elif not perms[path] >= AUDIT_WATCH_PERMS:
            out.append(f"{path} watched for -p {''.join(sorted(perms[path]))}, "
                       f"needs {''.join(sorted(AUDIT_WATCH_PERMS))}")
    return out


# CIS Debian Linux 12 Benchmark v1.1.0, "Configure Filesystem Kernel Modules" and "Configure
# Network Kernel Modules": dccp, sctp, rds, tipc, usb-storage (and firewire-core, "Ensure
# firewire-core kernel module is not available" of the later Debian 12 editions) are
# unavailable: `install MODULE /bin/false` (or /bin/true) and `blacklist MODULE`.
BLOCKED_KERNEL_MODULES = ("dccp", "sctp", "rds", "tipc", "usb-storage", "firewire-core")
MODULE_INSTALL_COMMANDS = frozenset({"/bin/false", "/bin/true", "/usr/bin/false",
                                     "/usr/bin/true"})


def _module(name: str) -> str:
    return name.replace("-", "_")


def module_block_violations(modprobe_config: str) -> list[str]:
    """MOD-01: from `modprobe --showconfig`, each module has an install-false and a blacklist."""
    installs: dict[str, str] = {}
    blacklisted: set[str] = set()
    for line in modprobe_config.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "install":
            installs[_module(words[1])] = " ".join(words[2:])
        elif len(words) == 2 and words[0] == "blacklist":
            blacklisted.add(_module(words[1]))
    out = []
    for mod in BLOCKED_KERNEL_MODULES:
        cmd = installs.get(_module(mod))
        if cmd is None or cmd.split()[0] not in MODULE_INSTALL_COMMANDS:
            out.append(f"{mod}: no `install {mod} /bin/false` (got {cmd!r})")
        if _module(mod) not in blacklisted:
            out.append(f"{mod}: not blacklisted")
    return out


# CIS Debian Linux 12 Benchmark v1.1.0, "Configure shadow password suite parameters":
# PASS_MAX_DAYS 365 or less, PASS_MIN_DAYS 1 or more, PASS_WARN_AGE 7 or more, ENCRYPT_METHOD
# SHA512 or YESCRYPT; "Ensure default user umask is configured": UMASK 027 or stricter.
# DISA Red Hat Enterprise Linux 8 STIG, RHEL-08-010130: SHA_CRYPT_MIN_ROUNDS 5000 or more
# (when SHA512 is the method). YESCRYPT_COST_FACTOR: login.defs(5) range 1-11, Debian's
# default 5 taken as the floor.
LOGIN_DEFS_MAX = {"PASS_MAX_DAYS": 365}
LOGIN_DEFS_MIN = {"PASS_MIN_DAYS": 1, "PASS_WARN_AGE": 7}
LOGIN_DEFS_ENCRYPT_METHODS = frozenset({"SHA512", "YESCRYPT"})
LOGIN_DEFS_SHA_CRYPT_MIN_ROUNDS = 5000
LOGIN_DEFS_YESCRYPT_MIN_COST = 5
LOGIN_DEFS_UMASK_OTHERS = 0o007  # "027 or more restrictive": nothing for others
LOGIN_DEFS_UMASK_GROUP = 0o002  # group may not write


def login_defs_settings(text: str) -> dict[str, str]:
    """The effective settings of /etc/login.defs (the last uncommented line of each key)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#"):
            out[words[0]] = words[1]
    return out


def login_defs_violations(settings: Mapping[str, str]) -> list[str]:
    """LOGIN-01: ageing, hashing and umask of new local accounts meet the CIS/DISA floors."""
    out = []
    for key, most in LOGIN_DEFS_MAX.items():
        if not settings.get(key, "").isdigit() or int(settings[key]) > most:
            out.append(f"{key} = {settings.get(key)}, must be at most {most}")
    for key, least in LOGIN_DEFS_MIN.items():
        if not settings.get(key, "").isdigit() or int(settings[key]) < least:
            out.append(f"{key} = {settings.get(key)}, must be at least {least}")
    method = settings.get("ENCRYPT_METHOD")
    if method not in LOGIN_DEFS_ENCRYPT_METHODS:
        out.append(f"ENCRYPT_METHOD = {method}, must be one of "
                   f"{sorted(LOGIN_DEFS_ENCRYPT_METHODS)}")
    if method == "SHA512":
        rounds = settings.get("SHA_CRYPT_MIN_ROUNDS", "")
        if not rounds.isdigit() or int(rounds) < LOGIN_DEFS_SHA_CRYPT_MIN_ROUNDS:
            out.append(f"SHA_CRYPT_MIN_ROUNDS = {rounds or None}, must be at least "
                       f"{LOGIN_DEFS_SHA_CRYPT_MIN_ROUNDS}")
    if method == "YESCRYPT":
        cost = settings.get("YESCRYPT_COST_FACTOR", "")
        if not cost.isdigit() or int(cost) < LOGIN_DEFS_YESCRYPT_MIN_COST:
            out.append(f"YESCRYPT_COST_FACTOR = {cost or None}, must be at least "
                       f"{LOGIN_DEFS_YESCRYPT_MIN_COST}")
    umask = settings.get("UMASK", "")
    try:
        bits = int(umask, 8)
    except ValueError:
        out.append(f"UMASK = {umask or None} is not an octal mask")
    else:
        if bits & LOGIN_DEFS_UMASK_OTHERS != LOGIN_DEFS_UMASK_OTHERS \
                or bits & LOGIN_DEFS_UMASK_GROUP != LOGIN_DEFS_UMASK_GROUP:
            out.append(f"UMASK = {umask}, must be 027 or more restrictive")
    return out


# CIS Debian Linux 12 Benchmark v1.1.0, "Ensure local login warning banner is configured
# properly" / "... remote login warning banner ..." (/etc/issue, /etc/issue.net) and "Ensure
# message of the day is configured properly" (/etc/motd): the site's policy text, with no
# operating system information (getty's \m, \r, \s, \v escapes, the distribution's name).
# DISA STIG (e.g. Ubuntu 22.04 UBTU-22-255020, SSH Banner): the notice says the system is
# monitored and use is for authorised users; issue 19: in Vietnamese and English.
BANNER_FORBIDDEN = (re.compile(r"\\[mrsv]"), re.compile(r"(?i)\b(debian|ubuntu|linux|gnu)\b"))
BANNER_REQUIRED = (
    ("English: authorised use only", re.compile(r"(?i)\bauthori[sz]ed\b")),
    ("English: monitoring", re.compile(r"(?i)\b(monitored|logged)\b")),
    ("Vietnamese: authorised use only", re.compile(r"(?i)được cấp quyền|được phép")),
    ("Vietnamese: monitoring", re.compile(r"(?i)giám sát|ghi nhật ký")),
)


def banner_violations(text: str) -> list[str]:
    """BAN-01: the notice in both languages, no operating system information."""
    out = [f"names the system: {m.group(0)!r}" for rx in BANNER_FORBIDDEN
           for m in [rx.search(text)] if m]
    out += [f"missing: {what}" for what, rx in BANNER_REQUIRED if not rx.search(text)]
    return out


# systemd-analyze(1), "security": the overall exposure level of a unit from its score,
# 0.0-10.0 (badness_table of src/analyze/analyze-security.c): below 0.1 "PERFECT", below
# 1.0 "SAFE", below 5.0 "OK", from 5.0 "MEDIUM", from 7.5 "EXPOSED", from 9.0 "UNSAFE",
# from 10 "DANGEROUS". Issue 19: every service the project installs is "OK" or better.
SYSTEMD_EXPOSURE_MAX = 4.9
SYSTEMD_EXPOSURE_OK_LEVELS = frozenset({"PERFECT", "SAFE", "OK"})


def systemd_exposure_violations(unit: str, score: float, level: str) -> list[str]:
    """SBX-01: the unit's overall exposure is OK or better."""
    if score > SYSTEMD_EXPOSURE_MAX or level not in SYSTEMD_EXPOSURE_OK_LEVELS:
        return [f"{unit}: exposure {score:.1f} {level}, must be at most "
                f"{SYSTEMD_EXPOSURE_MAX} (OK or better)"]
    return []


# =============================================================================== updates ====
# Debian's security archive, as unattended-upgrades names it (Debian's default
# /etc/apt/apt.conf.d/50unattended-upgrades; wiki.debian.org/UnattendedUpgrades): origin
# Debian, label Debian-Security, codename <release> or <release>-security. Only such patterns
# may be allowed: "security updates only".
UPDATE_ORIGIN = "Debian"
UPDATE_LABEL = "Debian-Security"
UPDATE_CODENAMES = frozenset({"${distro_codename}", "${distro_codename}-security"})
# APT::Periodic::Update-Package-Lists and ::Unattended-Upgrade are in days: at most 1 (daily;
# 0 switches them off). docs/security.md UPD-01, "periodic runs daily".
UPDATE_MAX_INTERVAL_DAYS = 1


def update_origin_violations(patterns: Iterable[str]) -> list[str]:
    got = list(patterns)
    if not got:
        return ["no Origins-Pattern: nothing is updated"]
    out = []
    for p in got:
        fields = dict(f.split("=", 1) for f in p.split(",") if "=" in f)
        if (fields.get("origin", fields.get("o")) != UPDATE_ORIGIN
                or fields.get("label", fields.get("l")) != UPDATE_LABEL
                or fields.get("codename", fields.get("n")) not in UPDATE_CODENAMES):
            out.append(f"origin pattern {p!r} is not Debian's security archive")
    return out


def periodic_violations(name: str, value: str) -> list[str]:
    if not value.isdigit() or int(value) == 0:
        return [f"{name} is {value!r}: off"]
    if int(value) > UPDATE_MAX_INTERVAL_DAYS:
        return [f"{name} every {value} days > {UPDATE_MAX_INTERVAL_DAYS}"]
    return []


# ============================================================================== fail2ban ====
# The jails of the control (docs/security.md F2B-03): SSH, SMTP AUTH, IMAP/POP3, and the
# password page (F2B-04, issue 12: an address guessing there must be banned too).
F2B_JAILS = frozenset({"sshd", "postfix-sasl", "dovecot", "selfservice"})
# fail2ban's own defaults (jail.conf [DEFAULT]: bantime = 10m, findtime = 10m,
# maxretry = 5): a deployment may ban longer, count longer and allow fewer tries, never less.
F2B_MIN_BANTIME_S = 600
F2B_MIN_FINDTIME_S = 600
F2B_MAX_MAXRETRY = 5


def fail2ban_violations(jail: str, bantime: int, findtime: int, maxretry: int,
                        lockout_failures: int) -> list[str]:
    """One jail's numbers. `lockout_failures`: the regulation's lockout for the accounts the
    jail protects (policy.password.*.lockout_failures): the address is banned no later."""
    out = []
    if 0 <= bantime < F2B_MIN_BANTIME_S:  # a negative bantime is a permanent ban
        out.append(f"{jail}: bantime {bantime}s < {F2B_MIN_BANTIME_S}s")
    if findtime < F2B_MIN_FINDTIME_S:
        out.append(f"{jail}: findtime {findtime}s < {F2B_MIN_FINDTIME_S}s")
    limit = min(F2B_MAX_MAXRETRY, lockout_failures)
    if maxretry > limit:
        out.append(f"{jail}: maxretry {maxretry} > {limit}")
    return out


# ================================================================================== DKIM ====
# RFC 8301 ("Cryptographic Algorithm and Key Usage Update to DKIM"), section 3.2: signers
# SHOULD use RSA keys of at least 2048 bits (M3AAWG "DKIM Key Rotation Best Common Practices"
# recommends 2048); section 3.1: rsa-sha1 MUST NOT be used for signing.
DKIM_RSA_MIN_BITS = 2048
DKIM_FORBIDDEN_HASHES = frozenset({"sha1"})
# RFC 6376 section 3.6.1, tag t=y: "this domain is testing DKIM" (verifiers may ignore
# failures): a production key record must not carry it.
DKIM_FORBIDDEN_FLAGS = frozenset({"y"})


def rsa_public_key_bits(der: bytes) -> int:
    """Modulus size of a DER SubjectPublicKeyInfo (or PKCS#1 RSAPublicKey)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
    )
    key = load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key.key_size


def dkim_record_violations(txt: str) -> list[str]:
    """A DKIM key TXT record (`v=DKIM1; k=rsa; p=...`) against RFC 8301 / RFC 6376."""
    tags = {}
    for part in txt.replace('"', "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k.strip()] = re.sub(r"\s+", "", v)
    out = []
    if tags.get("v", "DKIM1") != "DKIM1":
        out.append(f"v={tags['v']}")
    if tags.get("k", "rsa") != "rsa":
        out.append(f"k={tags['k']}: not RSA (this floor knows RSA only)")
    hashes = set(tags.get("h", "").split(":")) - {""}
    if hashes and not hashes - DKIM_FORBIDDEN_HASHES:
        out.append(f"h={tags['h']}: only a forbidden hash")
    flags = set(tags.get("t", "").split(":")) & DKIM_FORBIDDEN_FLAGS
    if flags:
        out.append(f"t={tags['t']}: testing mode")
    p = tags.get("p", "")
    if not p:
        out.append("p= empty: the key is revoked")
    else:
        try:
            bits = rsa_public_key_bits(base64.b64decode(p))
        except ValueError as exc:
            out.append(f"p= is not an RSA public key: {exc}")
        else:
            if bits < DKIM_RSA_MIN_BITS:
                out.append(f"RSA key of {bits} bits < {DKIM_RSA_MIN_BITS}")
    return out


# ================================================================================== DMARC ===
# RFC 7489 section 6.3, p=reject: "the Domain Owner wishes for Mail Receivers to reject email
# that fails the DMARC mechanism check"; OpenDMARC does so only with RejectFailures true
# (opendmarc.conf(5)). SPF is checked by OpenDMARC itself (SPFSelfValidate, docs/security.md).
DMARC_OPENDMARC_REQUIRED = {"RejectFailures": "true", "SPFSelfValidate": "true"}


def opendmarc_violations(conf: str) -> list[str]:
    settings: dict[str, str] = {}
    for line in conf.splitlines():
        fields = line.split(None, 1)
        if fields and not fields[0].startswith("#"):
            settings[fields[0]] = fields[1].strip() if len(fields) > 1 else ""
    return [f"{k} is {settings.get(k)!r}, must be {v}"
            for k, v in DMARC_OPENDMARC_REQUIRED.items() if settings.get(k, "").lower() != v]


# ======================================================================== service sandbox ===
# systemd.exec(5), "Sandboxing" and "Capabilities": what PWWEB-05 requires of the password
# page's unit (docs/security.md PWWEB-05), as `systemctl show` prints it.
SERVICE_SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
}
# "Its own user": not root, not an account other services share, a system account (Debian
# Policy, section 9.2.2: UIDs 100-999 are dynamically allocated system users) without a
# login shell.
SHARED_ACCOUNTS = frozenset({"root", "nobody", "daemon", "www-data", "_apt"})
SYSTEM_UID_RANGE = range(100, 1000)
NOLOGIN_SHELLS = frozenset({"/usr/sbin/nologin", "/sbin/nologin", "/bin/false",
                            "/usr/bin/false"})
# The CSRF key is an HMAC-SHA256 key: RFC 2104 section 3, keys shorter than the hash output
# (L = 32 bytes for SHA-256) are "strongly discouraged".
HMAC_SHA256_MIN_KEY_BYTES = 32


def sandbox_violations(props: Mapping[str, str], passwd: str) -> list[str]:
    """`systemctl show` properties and the service user's passwd line (getent passwd)."""
    out = [f"{k}={props.get(k)!r}, must be {v!r}" for k, v in SERVICE_SANDBOX.items()
           if props.get(k) != v]
    user = props.get("User", "")
    if not user or user in SHARED_ACCOUNTS:
        out.append(f"runs as {user or 'root'}: not a user of its own")
    fields = passwd.strip().split(":")
    if len(fields) < 7 or fields[0] != user:
        out.append(f"no passwd entry for {user!r}")
    else:
        if int(fields[2]) not in SYSTEM_UID_RANGE:
            out.append(f"{user} has UID {fields[2]}, not a system account")
        if fields[6] not in NOLOGIN_SHELLS:
            out.append(f"{user} has the login shell {fields[6]}")
    return out


# ================================================================================ backups ===
# The regulation's schedule words (data/mailboxes.yaml policy.backups.schedule) and the
# longest time they allow between two runs: daily 1 day, weekly 7, monthly 31 (the longest
# month).
BACKUP_MAX_INTERVAL_DAYS = {"daily": 1, "weekly": 7, "monthly": 31}


def backup_schedule_violations(schedule: str, elapses: list[datetime]) -> list[str]:
    """The next runs of the timer (systemd-analyze calendar --iterations) against the word."""
    if schedule not in BACKUP_MAX_INTERVAL_DAYS:
        raise ValueError(f"{schedule!r} is not one of {sorted(BACKUP_MAX_INTERVAL_DAYS)}")
    if len(elapses) < 2:
        return ["fewer than two upcoming runs: not a repeating schedule"]
    limit = BACKUP_MAX_INTERVAL_DAYS[schedule]
    gaps = [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(elapses)]
    if max(gaps) > limit:
        return [f"runs {max(gaps):.2f} days apart, {schedule} allows {limit}"]
    return []


def served_certificate_violations(not_before: datetime, not_after: datetime,
                                  now: datetime) -> list[str]:
    """A certificate as a listener serves it: at least TLS_CERT_MIN_REMAINING_DAYS left, and
    a lifetime within TLS_CERT_MAX_DAYS."""
    out = []
    left = (not_after - now).total_seconds() / 86400
    if left < TLS_CERT_MIN_REMAINING_DAYS:
        out.append(f"expires in {left:.1f} days (< {TLS_CERT_MIN_REMAINING_DAYS}), "
                   f"on {not_after:%Y-%m-%d}")
    life = (not_after - not_before).total_seconds() / 86400
    if life > TLS_CERT_MAX_DAYS:
        out.append(f"lifetime {life:.0f} days > {TLS_CERT_MAX_DAYS}")
    return out
