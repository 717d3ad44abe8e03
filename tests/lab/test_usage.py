"""Usage monitoring on the lab (issue 17 item 6): real activity, collected, reported.

One module-scoped run: a snapshot is collected (``mailgov collect``, the real playbook through
the inventory) before and after activity this test makes with real clients, so what other lab
tests did today does not blur the figures: every difference must be exactly what was made.

* A: two IMAPS logins, three messages submitted (587) to B;
* B: a POP3S login on mail2, one message submitted (465, mail2) to A;
* a delegate marks a message read in the unit mailbox (shared/<unit>/INBOX): a read day;
* C: filled with a message, then its quota set just above what it holds (98.5 %): "Warning";
* X (no login, no password known): pwdReset TRUE left on it: "initial password unchanged";
* Y: an active mailbox nobody uses: inactive in the report.
A host of the inventory that does not exist (10.210.<lab>.99, in the play's group) is
unreachable: both snapshots name it with the reason, and everything else is still collected.
The published directory is copied to mail1 by playbooks/publish_directory.yml and opened in
Chromium over HTTPS (the key pinned): it searches, and the next collection sees it published.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.client
import io
import json
import os
import shlex
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA_FILE, LAB_ID, REPO, Result, ldapi

pytestmark = pytest.mark.lab

POLL = 120  # seconds a delivery may take on a loaded 2-core machine
MAILGOV = str(REPO / ".venv" / "bin" / "mailgov")
GHOST = f"10.210.{LAB_ID}.99"  # no host there: the lab's own subnet, nothing leaves it


def _inventory_args(tmp: Path) -> list[str]:
    ghost = tmp / "ghost.yml"
    ghost.write_text(yaml.safe_dump({"all": {"children": {"mailservers": {"hosts": {
        "mail9": {"ansible_host": GHOST,
                  "ansible_ssh_common_args": "-o ConnectTimeout=5 -o BatchMode=yes"}}}}}}))
    main = os.environ.get("ANSIBLE_INVENTORY") or str(REPO / "inventory" / "lab")
    return ["--ansible-args", f"-i {shlex.quote(main)} -i {shlex.quote(str(ghost))}"]


def collect(folder: Path, tmp: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([MAILGOV, "collect", str(DATA_FILE), "--snapshot-dir", str(folder),
                           *_inventory_args(tmp)], cwd=REPO, capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mailgov: warning: not collected: mail9: unreachable" in proc.stderr, proc.stderr
    files = sorted(folder.glob("usage-*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def _message(sender: str, to: str, token: str, size: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, token
    msg.set_content("usage check\n" + ("x" * 76 + "\n") * (size // 77))
    return msg


def _wait(imaps: Callable[[str], Any], user: str, password: str, token: str,
          mailbox: str = "INBOX") -> None:
    deadline = time.monotonic() + POLL
    while time.monotonic() < deadline:
        with imaps("mail1") as im:
            im.login(user, password)
            typ, _ = im.select(f'"{mailbox}"', readonly=True)
            if typ == "OK":
                typ, hits = im.search(None, "SUBJECT", f'"{token}"')
                if typ == "OK" and hits[0].split():
                    return
        time.sleep(2)
    raise AssertionError(f"{token} not in {user}'s {mailbox} after {POLL} s")


def _quota(host_run: Callable[..., Result], user: str) -> tuple[int, int | None]:
    res = host_run("mail1", f"doveadm -f tab quota get -u {shlex.quote(user)}")
    assert res.rc == 0, res.stderr
    for row in res.stdout.splitlines()[1:]:
        cells = row.split("\t")
        if cells[1] == "STORAGE":
            return int(cells[2]), (int(cells[3]) if cells[3].isdigit() else None)
    raise AssertionError(res.stdout)


def _dn(host_run: Callable[..., Result], base: str, address: str, *attrs: str
        ) -> dict[str, list[str]]:
    res = ldapi(host_run, "ldapsearch -LLL -o ldif-wrap=no -b "
                f"{shlex.quote(base)} {shlex.quote(f'(mail={address})')} dn "
                + " ".join(attrs))
    assert res.rc == 0, res.stderr
    out: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            out.setdefault(k, []).append(v)
    return out


def _modify(host_run: Callable[..., Result], ldif: str) -> None:
    res = host_run("mail1", f"printf %s {shlex.quote(ldif)} | ldapmodify -Q -Y EXTERNAL "
                   "-H ldapi:///")
    assert res.rc == 0, (res.stdout, res.stderr)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, passwords: dict[str, str],
          data: dict[str, Any], host_run: Callable[..., Result], imaps: Callable[[str], Any],
          pop3s: Callable[[str], Any], smtp: Callable[..., Any],
          smtps: Callable[[str], Any], tls: ssl.SSLContext) -> Iterator[dict[str, Any]]:
    base = data["organization"]["base_dn"]
    domain = data["organization"]["domain"]
    tmp = tmp_path_factory.mktemp("usage")
    units = {u["id"]: u for u in data["units"]}
    delegates = {f"{d}@{domain}": u["id"] for u in data["units"]
                 for d in (u.get("mailbox") or {}).get("delegates", [])}
    known = sorted(a for a in passwords if a not in delegates)
    a_addr, b_addr, c_addr = known[:3]
    delegate = next(d for d in sorted(passwords) if d in delegates)
    unit_id = delegates[delegate]
    active = [m for m in data["mailboxes"] if m.get("state", "active") == "active"
              and m.get("kind", "personal") == "personal"]
    unused = [m for m in active if f"{m['address']}@{domain}" not in passwords
              and f"{m['address']}@{domain}" not in delegates and m.get("role") != "admin"
              and not any(u.get("head") == m["address"] for u in units.values())]
    x, y = unused[0], unused[-1]
    x_addr = f"{x['address']}@{domain}"
    token = f"usage-{os.getpid()}-{int(time.time())}"

    before = collect(tmp / "before", tmp)
    t0 = int(time.time())
    c_quota = _quota(host_run, c_addr)[1]
    x_entry = _dn(host_run, base, x_addr, "pwdReset", "pwdChangedTime")
    x_dn = x_entry["dn"][0]
    c_dn = _dn(host_run, base, c_addr)["dn"][0]
    reset_set = False
    try:
        # A: two IMAPS logins, three messages to B (587, STARTTLS).
        for _ in range(2):
            with imaps("mail1") as im:
                im.login(a_addr, passwords[a_addr])
        with smtp("mail1", 587) as s:
            s.ehlo()
            s.starttls(context=tls)
            s.ehlo()
            s.login(a_addr, passwords[a_addr])
            for i in range(3):
                s.send_message(_message(a_addr, b_addr, f"{token}-ab{i}"))
        # B: POP3S on mail2, one message to A through mail2 (465).
        p = pop3s("mail2")
        try:
            p.user(b_addr)
            p.pass_(passwords[b_addr])
        finally:
            p.quit()
        with smtps("mail2") as s:
            s.login(b_addr, passwords[b_addr])
            s.send_message(_message(b_addr, a_addr, f"{token}-ba"))
        for i in range(3):
            _wait(imaps, b_addr, passwords[b_addr], f"{token}-ab{i}")
        _wait(imaps, a_addr, passwords[a_addr], f"{token}-ba")
        # The delegate reads a new message in the unit mailbox (FETCH BODY[] sets \Seen).
        unit_local = _unit_local(unit_id)
        unit_addr = f"{unit_local}@{domain}"
        with smtp("mail1", 25) as s:
            s.send_message(_message("outside@example.org", unit_addr, f"{token}-unit"))
        box = f"shared/{unit_addr}/INBOX"
        _wait(imaps, delegate, passwords[delegate], f"{token}-unit", mailbox=box)
        with imaps("mail1") as im:
            im.login(delegate, passwords[delegate])
            im.select(f'"{box}"')
            typ, hits = im.search(None, "SUBJECT", f'"{token}-unit"')
            typ, _ = im.fetch(hits[0].split()[-1], "(BODY[])")
            assert typ == "OK"
        # C: a 200 KiB message, then a quota just above what the mailbox holds.
        with imaps("mail1") as im:
            im.login(c_addr, passwords[c_addr])
            im.append("INBOX", None, None,
                      _message(c_addr, c_addr, f"{token}-fill", 200 * 1024).as_bytes())
        used = _quota(host_run, c_addr)[0]
        near = int(used / 0.985)
        _modify(host_run, f"dn: {c_dn}\nchangetype: modify\nreplace: mailQuota\n"
                f"mailQuota: {near}\n")
        # X: the initial password left unchanged (pwdReset, as the lifecycle sets it).
        if "pwdReset" not in x_entry:
            _modify(host_run, f"dn: {x_dn}\nchangetype: modify\nreplace: pwdReset\n"
                    "pwdReset: TRUE\n")
            reset_set = True
        pub = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"),
                              str(REPO / "playbooks" / "publish_directory.yml"),
                              "-e", f"mailgov_data_file={DATA_FILE}",
                              "-e", f"mailgov_directory_build_dir={tmp / 'directory'}"],
                             cwd=REPO, capture_output=True, text=True, timeout=600,
                             check=False)
        assert pub.returncode == 0, pub.stdout[-3000:] + pub.stderr[-2000:]
        after = collect(tmp / "after", tmp)
        yield {"before": before, "after": after, "t0": t0, "a": a_addr, "b": b_addr,
               "c": c_addr, "near": near, "used": used, "x": x_addr, "x_entry": x_entry,
               "y": f"{y['address']}@{domain}", "unit_id": unit_id, "unit_local": unit_local,
               "domain": domain, "tmp": tmp, "data": data, "y_unit": y["unit"]}
    finally:
        if c_quota is not None:
            _modify(host_run, f"dn: {c_dn}\nchangetype: modify\nreplace: mailQuota\n"
                    f"mailQuota: {c_quota}\n")
        if reset_set:
            _modify(host_run, f"dn: {x_dn}\nchangetype: modify\ndelete: pwdReset\n")


def _unit_local(unit_id: str) -> str:
    from mailgov.validate import validate

    result = validate(str(DATA_FILE))
    assert result.ok, result.problems
    return result.unit_locals[unit_id]


def _box(doc: dict[str, Any], address: str) -> dict[str, Any]:
    return doc["mailboxes"].get(address.split("@")[0], {})


def _n(doc: dict[str, Any], address: str, key: str, day: str) -> int:
    return int(_box(doc, address).get(key, {}).get(day, 0))


def test_every_figure_is_what_was_made(world: dict[str, Any]) -> None:
    w = world
    day = date.today().isoformat()
    before, after = w["before"], w["after"]
    assert _n(after, w["a"], "sent", day) - _n(before, w["a"], "sent", day) == 3
    assert _n(after, w["b"], "sent", day) - _n(before, w["b"], "sent", day) == 1
    assert _n(after, w["b"], "received", day) - _n(before, w["b"], "received", day) == 3
    assert _n(after, w["a"], "received", day) - _n(before, w["a"], "received", day) == 1
    for who in (w["a"], w["b"]):  # logins (B's over POP3 on mail2): the last one is ours
        last = _box(after, who)["last_login"]
        assert last and datetime.fromisoformat(last[:-1]).replace(
            tzinfo=UTC).timestamp() >= w["t0"], (who, last)
        assert day in _box(after, who)["login_days"]
    assert day in _box(after, w["unit_local"])["read_days"]
    c = _box(after, w["c"])
    assert (c["storage_kib"], c["quota_kib"]) == (w["used"], w["near"])
    x = _box(after, w["x"])["initial_password"]
    since = w["x_entry"]["pwdChangedTime"][0][:8] if "pwdChangedTime" in w["x_entry"] else None
    assert x["unchanged"] is True
    assert x["since"] == (None if since is None else f"{since[:4]}-{since[4:6]}-{since[6:]}")
    assert _box(after, w["a"])["initial_password"] == {"unchanged": False, "since": None}
    y = _box(after, w["y"])
    assert y.get("last_login") is None and not y.get("login_days") and not y.get("sent")


def test_unreachable_host_is_a_gap_and_the_rest_is_collected(world: dict[str, Any]) -> None:
    hosts = world["after"]["hosts"]
    assert hosts["mail1"]["ok"] and hosts["mail2"]["ok"], hosts
    assert hosts["mail9"]["ok"] is False
    assert hosts["mail9"]["error"].startswith("unreachable: "), hosts["mail9"]
    assert len(world["after"]["mailboxes"]) > 100


def test_report_shows_the_snapshot(world: dict[str, Any]) -> None:
    w = world
    snap = sorted((w["tmp"] / "after").glob("usage-*.json"))[0]
    # The unit of Y (inactive) and the storage bucket of C, as the report prints them.
    for unit, who in ((w["y_unit"], w["y"]),):
        proc = subprocess.run([MAILGOV, "report", str(DATA_FILE), "--snapshot", str(snap),
                               "--unit", unit, "--format", "csv"], cwd=REPO,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        people = list(csv.reader(io.StringIO(proc.stdout.split("\n\n", 1)[1])))
        rows = {r[1]: dict(zip(people[0], r, strict=True)) for r in people[1:] if r}
        local = who.split("@")[0]
        assert rows[local]["inactive"] == "yes" and rows[local]["last_login"] == ""
    day = date.today().isoformat()
    a_sent_30 = sum(n for d, n in _box(w["after"], w["a"])["sent"].items() if d <= day)
    proc = subprocess.run([MAILGOV, "report", str(DATA_FILE), "--snapshot", str(snap),
                           "--unit", _unit_of(w, w["a"]), "--format", "csv", "--window",
                           "180"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    people = list(csv.reader(io.StringIO(proc.stdout.split("\n\n", 1)[1])))
    rows = {r[1]: dict(zip(people[0], r, strict=True)) for r in people[1:] if r}
    a = rows[w["a"].split("@")[0]]
    assert int(a["sent"]) == a_sent_30 and a["regular"] == "yes"
    c_unit = _unit_of(w, w["c"])
    proc = subprocess.run([MAILGOV, "report", str(DATA_FILE), "--snapshot", str(snap),
                           "--unit", c_unit, "--format", "csv"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    people = list(csv.reader(io.StringIO(proc.stdout.split("\n\n", 1)[1])))
    rows = {r[1]: dict(zip(people[0], r, strict=True)) for r in people[1:] if r}
    assert rows[w["c"].split("@")[0]]["quota_bucket"] == "warning"


def _unit_of(w: dict[str, Any], address: str) -> str:
    local = address.split("@")[0]
    return next(m["unit"] for m in w["data"]["mailboxes"] if m["address"] == local)


def test_published_directory_served_and_seen_by_collection(
        world: dict[str, Any], lab_hosts: dict[str, Any], lab_ca: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tests.unit.test_usage_report import ARTIFACTS

    assert set(world["after"]["published_units"]) == {u["id"] for u in world["data"]["units"]}
    mail1 = lab_hosts["mail1"]
    spki = _spki(mail1.addr, mail1.fqdn, lab_ca)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--no-proxy-server",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'p2'}",
                f"--host-resolver-rules=MAP {mail1.fqdn} {mail1.addr}",
                f"--ignore-certificate-errors-spki-list={spki}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    try:
        drv.get(f"https://{mail1.fqdn}/danh-ba/")
        assert drv.title.startswith("Danh bạ thư điện tử"), drv.title
        q = drv.find_element(By.ID, "q")
        assert q.is_displayed()
        local = world["a"].split("@")[0]
        q.send_keys(local)
        shown = [r.text for r in drv.find_elements(By.CSS_SELECTOR, "#dir tbody tr")
                 if r.is_displayed()]
        assert shown and all(local in s for s in shown), shown
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"
                  and "/favicon.ico " not in e.get("message", "")]
        assert not errors, errors
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        drv.save_screenshot(str(ARTIFACTS / "published-directory-lab.png"))
    finally:
        drv.quit()
    # The vCard file as a mail client fetches it (the browser would download it instead).
    ctx = ssl.create_default_context(cafile=str(lab_ca))
    conn = http.client.HTTPSConnection(mail1.addr, 443, context=ctx, timeout=30)
    conn._server_hostname = mail1.fqdn  # type: ignore[attr-defined]
    with socket.create_connection((mail1.addr, 443), timeout=30) as raw:
        conn.sock = ctx.wrap_socket(raw, server_hostname=mail1.fqdn)
        conn.request("GET", f"/danh-ba/units/{world['unit_id']}.vcf",
                     headers={"Host": mail1.fqdn})
        resp = conn.getresponse()
        body = resp.read().decode()
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/vcard")
    assert body.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n"), body[:100]


def _spki(ip: str, name: str, ca: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((ip, 443), timeout=15) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as t:
        der = t.getpeercert(binary_form=True)
    assert der
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem,
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                          capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
