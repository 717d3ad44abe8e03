"""`mailgov dns`: the record text the zone needs (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailgov import dns
from mailgov.cli import main

DATA = "data/mailboxes.yaml"
DOMAIN = "monre.gov.vn"  # organization.domain of the sample data


def fake_pem(seed: int = 1, size: int = 294) -> str:
    """A PEM-shaped public key (size bytes of DER-like data): enough for record text."""
    body = base64.b64encode(bytes((seed + i) % 256 for i in range(size))).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def by_name(doc: dict, name: str, rtype: str) -> list[str]:
    return [r["value"] for r in doc["records"] if r["name"] == name and r["type"] == rtype]


def test_json_has_every_record(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "s2026a-mail1.pub").write_text(fake_pem(1))
    (tmp_path / "s2026a-mail2.pub").write_text(fake_pem(2))
    code, out, _ = run(capsys, "dns", DATA, "--dkim-public-key-dir", str(tmp_path),
                       "--format", "json")
    assert code == 0
    doc = json.loads(out)
    d = f"{DOMAIN}."
    assert sorted(by_name(doc, d, "MX")) == [f"10 mail1.{DOMAIN}.", f"20 mail2.{DOMAIN}."]
    assert by_name(doc, d, "TXT") == ["v=spf1 mx -all"]
    for sel, seed in (("s2026a-mail1", 1), ("s2026a-mail2", 2)):
        [txt] = by_name(doc, f"{sel}._domainkey.{d}", "TXT")
        assert txt == "v=DKIM1; k=rsa; p=" + "".join(fake_pem(seed).splitlines()[1:-1])
    [dmarc] = by_name(doc, f"_dmarc.{d}", "TXT")
    assert dmarc.startswith("v=DMARC1; p=quarantine;")
    assert f"rua=mailto:postmaster@{DOMAIN}" in dmarc and f"ruf=mailto:postmaster@{DOMAIN}" in dmarc
    [sts] = by_name(doc, f"_mta-sts.{d}", "TXT")
    assert sts == f"v=STSv1; id={doc['mta_sts_policy']['id']}"
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", doc["mta_sts_policy"]["id"])
    assert by_name(doc, f"mta-sts.{d}", "CNAME") == [f"mail1.{DOMAIN}."]
    assert by_name(doc, f"_smtp._tls.{d}", "TXT") == [f"v=TLSRPTv1; rua=mailto:postmaster@{DOMAIN}"]
    assert doc["mta_sts_policy"]["text"] == (
        f"version: STSv1\r\nmode: testing\r\nmx: mail1.{DOMAIN}\r\nmx: mail2.{DOMAIN}\r\n"
        "max_age: 604800\r\n")
    assert doc["mta_sts_policy"]["url"] == f"https://mta-sts.{DOMAIN}/.well-known/mta-sts.txt"


def test_zone_splits_long_txt_into_255_byte_strings(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    (tmp_path / "s2026a.pub").write_text(fake_pem(3))
    code, out, _ = run(capsys, "dns", DATA, "--dkim-public-key-dir", str(tmp_path))
    assert code == 0
    [line] = [ln for ln in out.splitlines() if ln.startswith(f"s2026a._domainkey.{DOMAIN}.")]
    _name, ttl, cls, rtype, rdata = line.split("\t")
    assert (ttl, cls, rtype) == ("3600", "IN", "TXT")
    strings = re.findall(r'"([^"]*)"', rdata)
    assert len(strings) >= 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == "v=DKIM1; k=rsa; p=" + "".join(fake_pem(3).splitlines()[1:-1])
    assert f'{DOMAIN}.\t3600\tIN\tTXT\t"v=spf1 mx -all"' in out


def test_mta_sts_id_follows_the_policy() -> None:
    opts = dns.default_options(DOMAIN)
    a = dns.mta_sts_policy(opts)
    b = dns.mta_sts_policy(dns.DnsOptions(**{**opts.__dict__, "mta_sts_mode": "enforce"}))
    assert a.policy_id() != b.policy_id()
    assert a.policy_id() == dns.mta_sts_policy(dns.default_options(DOMAIN)).policy_id()


def test_options_change_records(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "dns", DATA, "--dkim-public-key-dir", str(tmp_path / "none"),
                         "--format", "json", "--dmarc-policy", "reject",
                         "--mx", "mx.example.org:5", "--report-address", "it@example.org")
    assert code == 0 and "no DKIM public keys" in err
    doc = json.loads(out)
    assert by_name(doc, f"{DOMAIN}.", "MX") == ["5 mx.example.org."]
    [dmarc] = by_name(doc, f"_dmarc.{DOMAIN}.", "TXT")
    assert "p=reject;" in dmarc and "rua=mailto:it@example.org" in dmarc
    assert not [r for r in doc["records"] if "_domainkey" in r["name"]]


@pytest.mark.parametrize("content, message", [
    ("hello", "not a PEM public key"),
    ("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n", "not valid base64"),
    (fake_pem(1, size=100), "too short"),
])
def test_bad_key_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   content: str, message: str) -> None:
    (tmp_path / "s2026a.pub").write_text(content)
    code, out, err = run(capsys, "dns", DATA, "--dkim-public-key-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("mailgov: error: DKIM key s2026a") and message in err
    assert "Traceback" not in err


def test_bad_selector_file_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "Bad_Name.pub").write_text(fake_pem())
    code, _, err = run(capsys, "dns", DATA, "--dkim-public-key-dir", str(tmp_path))
    assert code == 2 and "not a selector name" in err


def test_bad_mx_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dns", DATA, "--mx", "nopreference"])
    assert exc.value.code == 2
    assert "HOST:PREFERENCE" in capsys.readouterr().err


def test_txt_rdata_refuses_quotes() -> None:
    with pytest.raises(dns.DnsError):
        dns.txt_rdata('a"b')


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_real_rsa_2048_key(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout"], check=True,
                         capture_output=True, text=True).stdout
    txt = dns.dkim_txt(pub)
    der = base64.b64decode(txt.split("p=", 1)[1])
    assert txt.startswith("v=DKIM1; k=rsa; p=MIIBIjAN") and len(der) == 294


def test_key_dir_is_required_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    # The package does not know the lab's layout: no silent default, a message saying what to pass.
    code, out, err = run(capsys, "dns", DATA)
    assert code == 2 and out == ""
    assert "--dkim-public-key-dir" in err and "mailauth__dkim_fetch_dir" in err
    assert "Traceback" not in err
