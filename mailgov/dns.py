"""The DNS records the mail domain needs, as zone-file lines or JSON.

Everything is computed from the data file (the domain), a few options (MX hosts, DMARC
policy, report address, MTA-STS mode) and the DKIM public keys the `mailauth` role fetched
from the mail hosts (``DIR/<domain>/<selector>.pub``, PEM, a key per domain; DIR is the
inventory's ``mailauth__dkim_fetch_dir``; the older ``DIR/<selector>.pub`` is the primary's).
Nothing here touches the network: the output is what an administrator pastes into the zone
of ``DOMAIN``.

The MTA-STS policy file is built here too, from the same inputs the role uses to serve it
(``roles/mailauth/templates/.../mta-sts.txt.j2``); the `id` in the ``_mta-sts`` TXT record is
a hash of that text, so it changes exactly when the policy changes (RFC 8461 §3.1).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mailgov.i18n import _, error_line

# One selector: letters, digits, hyphen (RFC 6376 allows dots too; we never make those).
_SELECTOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.DOTALL)
# Longest single <character-string> in a TXT record (RFC 1035 §3.3): longer values are split.
_TXT_CHUNK = 255


class DnsError(Exception):
    """Bad input (unreadable key, bad option): a one-line message for the user."""


@dataclass(frozen=True)
class Record:
    name: str   # fully qualified, with the trailing dot
    type: str   # MX, TXT, CNAME
    value: str  # MX: "PREF HOST."; TXT: the unsplit text; CNAME: "HOST."
    comment: str = ""

    def zone_line(self, ttl: int) -> str:
        rdata = self.value
        if self.type == "TXT":
            rdata = txt_rdata(self.value)
        line = f"{self.name}\t{ttl}\tIN\t{self.type}\t{rdata}"
        return f"; {self.comment}\n{line}" if self.comment else line


@dataclass(frozen=True)
class MtaStsPolicy:
    mode: str                 # enforce | testing | none
    mx: tuple[str, ...]       # host names (no trailing dot)
    max_age: int              # seconds

    def text(self) -> str:
        """The policy file, CRLF line ends as RFC 8461 §3.2 shows them."""
        lines = ["version: STSv1", f"mode: {self.mode}"]
        lines += [f"mx: {m}" for m in self.mx]
        lines.append(f"max_age: {self.max_age}")
        return "".join(f"{line}\r\n" for line in lines)

    def policy_id(self) -> str:
        # 1-32 alphanumerics (RFC 8461 §3.1): first 20 hex digits of the text's SHA-256.
        return hashlib.sha256(self.text().encode()).hexdigest()[:20]


def txt_rdata(text: str) -> str:
    """A TXT value as quoted character-strings of at most 255 bytes each."""
    if '"' in text or "\\" in text:
        raise DnsError(_("TXT text must not contain quotes or backslashes: {text!r}").format(
            text=text))
    chunks = [text[i:i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK)] or [""]
    return " ".join(f'"{c}"' for c in chunks)


def dkim_public_key_b64(pem: str, source: str = "key") -> str:
    """The base64 body of a PEM SubjectPublicKeyInfo, checked to decode."""
    m = _PEM.search(pem)
    if not m:
        raise DnsError(_("{source}: not a PEM public key (BEGIN PUBLIC KEY)").format(source=source))
    body = "".join(m.group(1).split())
    try:
        der = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise DnsError(_("{source}: the PEM body is not valid base64").format(
            source=source)) from None
    if len(der) < 200:  # a 2048-bit RSA SubjectPublicKeyInfo is 294 bytes
        raise DnsError(_("{source}: key too short ({count} bytes); DKIM needs RSA >= 2048 "
                         "bits").format(
            source=source, count=len(der)))
    return body


def dkim_txt(pem: str, source: str = "key") -> str:
    return f"v=DKIM1; k=rsa; p={dkim_public_key_b64(pem, source)}"


def read_dkim_keys(directory: Path) -> dict[str, str]:
    """selector -> PEM text, from ``DIR/<selector>.pub`` (sorted; missing dir = no keys)."""
    if not directory.exists():
        return {}
    if not directory.is_dir():
        raise DnsError(_("{directory}: not a directory").format(directory=directory))
    keys: dict[str, str] = {}
    for path in sorted(directory.glob("*.pub")):
        selector = path.stem
        if not _SELECTOR.match(selector):
            raise DnsError(_("{path}: {selector!r} is not a selector name (a-z, 0-9, -)").format(
                path=path, selector=selector))
        try:
            keys[selector] = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise DnsError(_("{path}: cannot read: {error}").format(path=path, error=exc)) from None
    return keys


def read_domain_keys(directory: Path, domain: str, *, primary: bool) -> dict[str, str]:
    """selector -> PEM of one domain's keys: ``DIR/<domain>/<selector>.pub`` (a key per
    domain, as the mailauth role fetches them). The primary domain falls back to
    ``DIR/<selector>.pub``, the layout before keys were per domain."""
    sub = directory / domain
    if sub.is_dir():
        return read_dkim_keys(sub)
    return read_dkim_keys(directory) if primary else {}


@dataclass(frozen=True)
class DnsOptions:
    domain: str
    mx: tuple[tuple[str, int], ...]        # (host, preference)
    report_address: str                    # DMARC rua/ruf and TLS-RPT rua
    dmarc_policy: str = "quarantine"       # none | quarantine | reject
    mta_sts_mode: str = "testing"          # enforce once the TLS reports are clean
    mta_sts_max_age: int = 604800          # one week
    mta_sts_host: str = ""                 # serves https://mta-sts.DOMAIN/ (default: first MX)


def default_options(domain: str) -> DnsOptions:
    """The ministry's layout: mail1 (MX 10), mail2 (MX 20), reports to postmaster@."""
    return DnsOptions(domain=domain, mx=((f"mail1.{domain}", 10), (f"mail2.{domain}", 20)),
                      report_address=f"postmaster@{domain}")


def mta_sts_policy(opts: DnsOptions) -> MtaStsPolicy:
    return MtaStsPolicy(opts.mta_sts_mode, tuple(h for h, _port in opts.mx), opts.mta_sts_max_age)


def records(opts: DnsOptions, dkim_keys: dict[str, str]) -> list[Record]:
    if opts.dmarc_policy not in ("none", "quarantine", "reject"):
        raise DnsError(_("DMARC policy {dmarc_policy!r}: use none, quarantine or reject").format(
            dmarc_policy=opts.dmarc_policy))
    if opts.mta_sts_mode not in ("enforce", "testing", "none"):
        raise DnsError(_("MTA-STS mode {mta_sts_mode!r}: use enforce, testing or none").format(
            mta_sts_mode=opts.mta_sts_mode))
    if not opts.mx:
        raise DnsError(_("at least one MX host is needed"))
    d = f"{opts.domain}."
    out = [Record(d, "MX", f"{pref} {host}.", "inbound mail" if i == 0 else "")
           for i, (host, pref) in enumerate(opts.mx)]
    out.append(Record(d, "TXT", "v=spf1 mx -all",
                      "SPF: only the MX hosts send for the domain; everything else fails"))
    for i, (selector, pem) in enumerate(sorted(dkim_keys.items())):
        out.append(Record(f"{selector}._domainkey.{d}", "TXT",
                          dkim_txt(pem, f"DKIM key {selector}"),
                          "DKIM public keys (one per selector; see docs/security.md, rotation)"
                          if i == 0 else ""))
    report = f"mailto:{opts.report_address}"
    out.append(Record(f"_dmarc.{d}", "TXT",
                      f"v=DMARC1; p={opts.dmarc_policy}; sp={opts.dmarc_policy}; "
                      f"adkim=r; aspf=r; pct=100; fo=1; rua={report}; ruf={report}",
                      "DMARC: aggregate and failure reports to the postmaster"))
    policy = mta_sts_policy(opts)
    host = opts.mta_sts_host or opts.mx[0][0]
    out.append(Record(f"mta-sts.{d}", "CNAME", f"{host}.",
                      "MTA-STS: the policy is served at "
                      "https://mta-sts.DOMAIN/.well-known/mta-sts.txt"))
    out.append(Record(f"_mta-sts.{d}", "TXT", f"v=STSv1; id={policy.policy_id()}"))
    out.append(Record(f"_smtp._tls.{d}", "TXT", f"v=TLSRPTv1; rua={report}",
                      "TLS-RPT: senders report TLS failures to the postmaster"))
    return out


def render_zone(opts: DnsOptions, recs: list[Record], ttl: int = 3600) -> str:
    head = [f"; DNS records for {opts.domain} (mailgov dns). Paste into the zone.",
            "; MTA-STS policy file (https://mta-sts."
            f"{opts.domain}/.well-known/mta-sts.txt):"]
    head += [f";   {line}" for line in mta_sts_policy(opts).text().splitlines()]
    return "\n".join(head + [r.zone_line(ttl) for r in recs]) + "\n"


def render_json(opts: DnsOptions, recs: list[Record], ttl: int = 3600) -> dict[str, object]:
    policy = mta_sts_policy(opts)
    return {
        "domain": opts.domain,
        "ttl": ttl,
        "records": [{k: v for k, v in asdict(r).items() if k != "comment"} for r in recs],
        "mta_sts_policy": {"url": f"https://mta-sts.{opts.domain}/.well-known/mta-sts.txt",
                           "id": policy.policy_id(), "text": policy.text()},
    }


# --------------------------------------------------------------------------- the command
# Kept here so that cli.py only registers it (several helpers edit cli.py).

# No default key directory: where the role fetched the keys is the inventory's setting
# (mailauth__dkim_fetch_dir), and the product does not know the lab's layout.
NO_KEY_DIR = ("say where the DKIM public keys are: --dkim-public-key-dir DIR, the inventory's "
              "mailauth__dkim_fetch_dir (lab: .lab/dkim, or .lab/labN/dkim for MAILGOV_LAB_ID=N)")


def _mx_arg(text: str) -> tuple[str, int]:
    host, sep, pref = text.rpartition(":")
    if not sep or not host or not pref.isdigit() or int(pref) > 65535:
        raise argparse.ArgumentTypeError(_("{text!r} is not HOST:PREFERENCE "
                                           "(mail1.example:10)").format(
            text=text))
    return host.rstrip("."), int(pref)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dns", help="print the DNS records the mail domain needs",
                       description="Print MX, SPF, DKIM (one TXT per selector), DMARC, "
                       "MTA-STS and TLS-RPT records for the data file's domain, and the "
                       "MTA-STS policy file. DKIM keys: DIR/<domain>/<selector>.pub (PEM, a key "
                       "per domain), as the mailauth role fetches them from the mail hosts.")
    p.add_argument("data", nargs="?", default="data/mailboxes.yaml",
                   help="the data file (default data/mailboxes.yaml)")
    p.add_argument("--dkim-public-key-dir", type=Path, default=None, metavar="DIR",
                   help="DKIM public keys, required: the inventory's mailauth__dkim_fetch_dir "
                   "(lab: .lab/dkim, .lab/labN/dkim for MAILGOV_LAB_ID=N)")
    p.add_argument("--format", choices=("zone", "json"), default="zone")
    p.add_argument("--mx", type=_mx_arg, action="append", metavar="HOST:PREF",
                   help="an MX host and preference (repeat; default mail1.DOMAIN:10 "
                   "and mail2.DOMAIN:20)")
    p.add_argument("--dmarc-policy", choices=("none", "quarantine", "reject"),
                   default="quarantine")
    p.add_argument("--report-address", metavar="ADDR",
                   help="DMARC and TLS-RPT reports (default postmaster@DOMAIN)")
    p.add_argument("--mta-sts-mode", choices=("enforce", "testing", "none"), default="testing",
                   help="testing (default) until the TLS reports are clean, then enforce; "
                   "the same value as the inventory's mailgov_mta_sts_mode")
    p.add_argument("--mta-sts-max-age", type=int, default=604800, metavar="SECONDS")
    p.add_argument("--ttl", type=int, default=3600)
    p.set_defaults(func=cmd_dns)


def cmd_dns(args: argparse.Namespace) -> int:
    from mailgov.validate import validate

    try:
        if args.dkim_public_key_dir is None:
            raise DnsError(NO_KEY_DIR)
        result = validate(args.data)
        if not result.ok or result.directory is None:
            for problem in result.problems:
                print(problem.format())
            print(error_line(_("fix {data} first").format(data=args.data)), file=sys.stderr)
            return 1
        domain = result.directory.organization.domain
        opts = default_options(domain)
        report = args.report_address or opts.report_address
        if "@" not in report:
            raise DnsError(_("--report-address {report!r} is not an address").format(report=report))
        if args.mta_sts_max_age <= 0 or args.ttl <= 0:
            raise DnsError(_("--mta-sts-max-age and --ttl must be positive"))
        opts = DnsOptions(domain=domain, mx=tuple(args.mx) if args.mx else opts.mx,
                          report_address=report, dmarc_policy=args.dmarc_policy,
                          mta_sts_mode=args.mta_sts_mode, mta_sts_max_age=args.mta_sts_max_age)
        key_dir = args.dkim_public_key_dir
        if key_dir.exists() and not key_dir.is_dir():
            raise DnsError(_("{key_dir}: not a directory").format(key_dir=key_dir))
        keys = read_domain_keys(key_dir, domain.lower(), primary=True)
        recs = records(opts, keys)
        # Alias domains (issue 14): the same MX hosts and reports; each domain its own zone,
        # SPF, DKIM (d= that domain, its own key under the hosts' selectors), DMARC, MTA-STS
        # and TLS-RPT.
        extra = []
        for a in result.directory.organization.alias_domains:
            o = replace(opts, domain=a.domain.lower())
            own = read_domain_keys(key_dir, o.domain, primary=False)
            extra.append((o, records(o, own), own))
    except DnsError as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    for name, found in ((domain, keys), *((o.domain, k) for o, _r, k in extra)):
        if not found:
            print(_("mailgov: warning: no DKIM public keys for {name} in {key_dir} (converge "
                    "the mailauth role first); no DKIM records printed for it").format(
                name=name, key_dir=key_dir), file=sys.stderr)
    if args.format == "json":
        doc = render_json(opts, recs, args.ttl)
        if extra:
            doc["alias_domains"] = [render_json(o, r, args.ttl) for o, r, _k in extra]
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print(render_zone(opts, recs, args.ttl), end="")
        for o, r, _k in extra:
            print("\n" + render_zone(o, r, args.ttl), end="")
    return 0
