"""The self-service password page (roles/selfservice, docs/selfservice.md, PWWEB-*), used
FROM the client host like a person's browser: HTTPS with the lab CA, a cookie jar, the form.

Every change uses a throw-away mailbox (authprobe.py). The page must pass the directory's
verdict through: the expected refusals are provoked with values from the data's policy, and
the displayed texts are the page's own table (read from the role's file, not retyped here).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import re
import secrets
import shlex
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import standards
from authprobe import CA_ON_CLIENT, Probe, imap_steps

from lab.labenv import lab_dir, lab_id

PROVIDER = "mail1"
REPO = Path(__file__).resolve().parents[2]
APP_FILE = REPO / "roles/selfservice/files/usr/local/lib/mailgov/mailgov_selfservice.py"


def page_messages() -> dict[str, dict[str, str]]:
    """The page's MESSAGES table, read from its source (the app imports python-ldap)."""
    tree = ast.parse(APP_FILE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "MESSAGES":
            return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise AssertionError("no MESSAGES table in the page's source")


MESSAGES = page_messages()

# A browser on the client: GET the form (cookie + token), POST it; one JSON line of results.
BROWSER = r"""
import html, http.cookiejar, json, re, socket, ssl, sys, urllib.error, urllib.parse
import urllib.request

name, ip, ca = sys.argv[1], sys.argv[2], sys.argv[3]
_gai = socket.getaddrinfo
socket.getaddrinfo = lambda h, *a, **k: _gai(ip if h == name else h, *a, **k)
steps = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(cafile=ca)
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar))
token, results = "", []
for step in steps:
    if step.get("drop_cookies"):
        jar.clear()
    data = None
    if "form" in step:
        form = dict(step["form"])
        if form.get("csrf") == "@page":
            form["csrf"] = token
        data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request("https://" + name + step.get("path", "/"), data=data)
    try:
        resp = opener.open(req, timeout=60)
        status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    text = body.decode("utf-8", "replace")
    m = re.search(r'name="csrf" value="([^"]*)"', text)
    if m:
        token = m.group(1)
    msg = re.search(r'<p class="(ok|error)" id="result"[^>]*>(.*?)</p>', text, re.S)
    results.append({
        "status": status,
        "headers": {k.lower(): v for k, v in headers.items()},
        "set_cookie": headers.get_all("Set-Cookie") or [],
        "kind": msg.group(1) if msg else None,
        "message": html.unescape(msg.group(2)) if msg else None,
        "body": text[:6000],
    })
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def org(data: dict[str, Any]) -> dict[str, str]:
    return {"base_dn": data["organization"]["base_dn"], "domain": data["organization"]["domain"]}


@pytest.fixture(scope="module")
def page_vars(role_vars: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return role_vars("selfservice", PROVIDER)


@pytest.fixture(scope="module")
def page_name(page_vars: dict[str, Any]) -> str:
    """The page's host name (nginx server_name, in the host certificate)."""
    return str(page_vars["selfservice__hostname"])


@pytest.fixture(scope="module")
def browse(
    client_run: Callable[..., Any], host_address: Callable[[str], str], page_name: str
) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    def run(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        line = (shlex.join(["python3", "-c", BROWSER, page_name, host_address(PROVIDER),
                            CA_ON_CLIENT])
                + f" <<'MAILGOV_JSON'\n{json.dumps(steps)}\nMAILGOV_JSON")
        out = client_run(line, timeout=300)
        assert out.rc == 0, f"browser script failed: {out.stderr[-800:]}"
        return json.loads(out.stdout.strip().splitlines()[-1])
    return run


def change_steps(address: str, current: str, new: str, repeat: str | None = None,
                 lang: str = "vi") -> list[dict[str, Any]]:
    path = "/?lang=en" if lang == "en" else "/"
    form = {"csrf": "@page", "address": address, "current": current, "new": new,
            "repeat": new if repeat is None else repeat}
    return [{"path": path}, {"path": path, "form": form}]


@pytest.fixture
def probe(probes: Callable[..., Probe]) -> Probe:
    # A Vietnamese full name: the personal-data rule folds its syllables (Quýnh -> quynh).
    return probes("web", name="Nguyễn Thị Quýnh")


def new_password(min_length: int) -> str:
    """Every character class, no personal data, comfortably above the data's minimum."""
    return "Zt7#" + secrets.token_hex(max(min_length, 12)) + "Kw9!"


def imap_login(client_run: Callable[..., Any], address: str, user: str, pw: str) -> str:
    return str(imap_steps(client_run, address, [{"user": user, "password": pw}])[0]["login"])


def ldap_attrs(host_run: Callable[..., Any], dn: str, *attrs: str) -> str:
    out = host_run(PROVIDER, "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// "
                             f"-s base -b {shlex.quote(dn)} {' '.join(attrs)}")
    assert out.rc == 0, out.stderr
    return str(out.stdout)


# --- PWWEB-01: HTTPS only, modern TLS, the security headers ----------------------------------


def s_client(client_run: Callable[..., Any], ip: str, name: str, *opts: str) -> str:
    cmd = ["openssl", "s_client", "-connect", f"{ip}:443", "-servername", name,
           "-CAfile", CA_ON_CLIENT, "-verify_return_error", *opts]
    out = client_run("timeout 20 " + shlex.join(cmd) + " </dev/null 2>&1", timeout=60)
    return str(out.stdout) + str(out.stderr)


@pytest.mark.control("PWWEB-01", "Password page: HTTPS only, TLS 1.2+, security headers")
@pytest.mark.parametrize("old", ["-tls1", "-tls1_1"])
def test_page_refuses_old_tls(
    client_run: Callable[..., Any], host_address: Callable[[str], str], page_name: str, old: str
) -> None:
    text = s_client(client_run, host_address(PROVIDER), page_name, old,
                    "-cipher", "DEFAULT@SECLEVEL=0", "-msg")
    version = {"-tls1": "TLS 1.0", "-tls1_1": "TLS 1.1"}[old]
    # The client really offered the old protocol, and the server answered no ServerHello.
    assert re.search(rf">>> {version}, Handshake \[length [0-9a-f]+\], ClientHello", text), text
    assert "ServerHello" not in text.split("ClientHello", 1)[1], text[-800:]
    assert re.search(r"alert protocol version|alert number 70", text), text[-800:]


@pytest.mark.control("PWWEB-01", "Password page: HTTPS only, TLS 1.2+, security headers")
def test_page_https_only(
    client_run: Callable[..., Any], host_address: Callable[[str], str], page_name: str
) -> None:
    ip = host_address(PROVIDER)
    text = s_client(client_run, ip, page_name, "-tls1_2")
    assert "Verify return code: 0 (ok)" in text, text[-800:]
    assert re.search(r"Protocol\s*:\s*TLSv1\.2", text), text[-800:]
    # No plain HTTP: port 80 is closed (nothing to downgrade to).
    out = client_run(f"nc -z -w 5 {ip} 80; echo rc=$?")
    assert "rc=" in out.stdout and "rc=0" not in out.stdout, "port 80 answers"


@pytest.mark.control("PWWEB-01", "Password page: HTTPS only, TLS 1.2+, security headers")
def test_page_headers_and_languages(browse: Callable[..., list[dict[str, Any]]]) -> None:
    vi, en, css = browse([{"path": "/"}, {"path": "/?lang=en"}, {"path": "/style.css"}])
    assert vi["status"] == 200 and en["status"] == 200 and css["status"] == 200
    for r in (vi, en, css):
        h = r["headers"]
        assert int(re.search(r"max-age=(\d+)", h["strict-transport-security"]).group(1)) \
            >= 180 * 86400, h
        csp = h["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["cache-control"] == "no-store"
        assert "server" not in h or not re.search(r"\d", h["server"]), h["server"]
    # No script at all, no inline style: CSP default-src 'self' holds without exceptions.
    for r in (vi, en):
        assert "<script" not in r["body"].lower() and "style=" not in r["body"].lower()
    # Vietnamese by default (UTF-8, diacritics), English on request.
    assert vi["headers"]["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="vi">' in vi["body"] and MESSAGES["vi"]["title"] in vi["body"]
    assert '<html lang="en">' in en["body"] and MESSAGES["en"]["title"] in en["body"]
    # The CSRF cookie: Secure, HttpOnly, SameSite=Strict (first visit sets it).
    cookie = vi["set_cookie"][0]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie, cookie


@pytest.mark.control("PWWEB-05", "Password app: own user, sandboxed, unix socket, key root-only")
def test_service_sandboxed(mail1: Any, page_vars: dict[str, Any]) -> None:
    show = mail1.check_output(
        "systemctl show mailgov-selfservice -p User -p NoNewPrivileges -p ProtectSystem "
        "-p PrivateTmp -p ProtectHome -p CapabilityBoundingSet -p ActiveState -p MainPID")
    props = dict(line.split("=", 1) for line in show.splitlines())
    assert props["ActiveState"] == "active", props
    # The user's name is the role's (a deployment fact); what it must be is standards.py's.
    assert props["User"] == page_vars["selfservice__user"], props
    passwd = mail1.run(f"getent passwd {shlex.quote(props['User'])}").stdout
    problems = standards.sandbox_violations(props, passwd)
    # Its own: no other process on the host runs as that user.
    others = mail1.run(
        f"for p in $(pgrep -u {shlex.quote(props['User'])}); do grep -q "
        "'/mailgov-selfservice.service$' /proc/$p/cgroup || cat /proc/$p/comm; done").stdout
    if others.strip():
        problems.append(f"other processes run as {props['User']}: {others.strip()}")
    assert not problems, problems
    # Its processes really run as that user, and listen on no TCP port.
    users = mail1.check_output(f"ps -o user= --ppid {props['MainPID']} -p {props['MainPID']}")
    assert set(users.split()) == {props["User"]}, users
    tcp = mail1.check_output("ss -Hltnp")
    assert "gunicorn" not in tcp, tcp
    sock = mail1.file("/run/mailgov-selfservice/app.sock")
    assert sock.is_socket and sock.mode & 0o007 == 0, oct(sock.mode)
    key = mail1.file(page_vars["selfservice__secret_file"])
    assert key.user == "root" and key.mode == 0o600
    assert key.size >= standards.HMAC_SHA256_MIN_KEY_BYTES, key.size


# --- PWWEB-02: a change through the form takes effect for IMAP ------------------------------


@pytest.mark.control("PWWEB-02", "Password page: a change works; IMAP takes the new, not the old")
def test_change_through_page(
    browse: Callable[..., list[dict[str, Any]]],
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    policy: dict[str, Any],
    probe: Probe,
    no_fail2ban_for_client: None,
) -> None:
    address = host_address(PROVIDER)
    assert imap_login(client_run, address, probe.mail, probe.password) == "OK"
    new = new_password(int(policy["password"]["users"]["min_length"]))
    since = host_run(PROVIDER, "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    result = browse(change_steps(probe.mail.upper(), probe.password, new))[-1]
    assert result["status"] == 200 and result["kind"] == "ok", result["message"]
    assert result["message"] == MESSAGES["vi"]["ok"]
    assert new not in result["body"] and probe.password not in result["body"]
    logins = imap_steps(client_run, address, [{"user": probe.mail, "password": new},
                                              {"user": probe.mail, "password": probe.password}])
    assert logins[0]["login"] == "OK", logins
    assert logins[1]["login"].startswith("NO"), logins
    if int(policy["password"]["users"]["history"]) > 0:
        # Back to the old one: the directory's history refuses it, the page says why.
        back = browse(change_steps(probe.mail, new, probe.password, lang="en"))[-1]
        assert back["status"] == 400 and back["message"] == MESSAGES["en"]["in_history"], back
    # One journal line for the attempt (address, result), and no password in the journal.
    journal = host_run(PROVIDER, f"journalctl -q -o cat -u mailgov-selfservice --since "
                                 f"{shlex.quote(since)}").stdout
    assert f"address={probe.mail} result=ok" in journal, journal[-800:]
    if int(policy["password"]["users"]["history"]) > 0:
        assert f"address={probe.mail} result=in_history" in journal, journal[-800:]
    assert new not in journal and probe.password not in journal


# --- PWWEB-03: refusals are the server's, shown clearly, and change nothing -----------------


@pytest.mark.control("PWWEB-03", "Password page: refusals shown, nothing changed; CSRF enforced")
def test_refusals_change_nothing(
    browse: Callable[..., list[dict[str, Any]]],
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    policy: dict[str, Any],
    probe: Probe,
    no_fail2ban_for_client: None,
) -> None:
    users = policy["password"]["users"]
    min_length = int(users["min_length"])
    good = new_password(min_length)
    cases: list[tuple[str, list[dict[str, Any]], str]] = [
        # A wrong current password and an address nobody has: the same answer.
        ("bad_credentials", change_steps(probe.mail, "Wrong-" + probe.password, good), "vi"),
        ("bad_credentials", change_steps("nobody-" + probe.mail, probe.password, good, lang="en"),
         "en"),
        ("mismatch", change_steps(probe.mail, probe.password, good, good + "x"), "vi"),
        # One character short of the data's minimum, every class present.
        ("too_short", change_steps(probe.mail, probe.password,
                                   ("Zt7#" + "kvbwxq" * min_length)[:min_length - 1]), "vi"),
    ]
    if users.get("forbid_personal_data"):
        # The owner's given name (Quýnh, folded) inside an otherwise strong password.
        cases.append(("owner_name", change_steps(probe.mail, probe.password,
                                                 good[:8] + "Quynh" + good[8:], lang="en"), "en"))
        cases.append(("account_name", change_steps(probe.mail, probe.password,
                                                   probe.uid + good), "vi"))
    for key, steps, lang in cases:
        r = browse(steps)[-1]
        assert r["status"] == 400 and r["kind"] == "error", (key, r["status"], r["message"])
        assert r["message"] == MESSAGES[lang][key], (key, r["message"])
    # CSRF: a forged token, and no cookie at all, are refused before anything is tried.
    form = {"address": probe.mail, "current": probe.password, "new": good, "repeat": good}
    forged, cookieless = browse([
        {"path": "/"}, {"path": "/", "form": {**form, "csrf": "0" * 64}},
        {"path": "/", "form": {**form, "csrf": "@page"}, "drop_cookies": True},
    ])[1:]
    for r in (forged, cookieless):
        assert r["status"] == 403 and r["message"] == MESSAGES["vi"]["csrf"], r["message"]
    # Nothing changed: the original password still works, the candidates do not.
    logins = imap_steps(client_run, host_address(PROVIDER), [
        {"user": probe.mail, "password": probe.password},
        {"user": probe.mail, "password": good}])
    assert logins[0]["login"] == "OK" and logins[1]["login"].startswith("NO"), logins


# --- PWWEB-04: the first-login change (pwdReset TRUE) through the page ----------------------


@pytest.mark.control("PWWEB-04", "Password page: a pwdReset account changes it, then IMAP works")
def test_first_login_change(
    browse: Callable[..., list[dict[str, Any]]],
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    policy: dict[str, Any],
    probe: Probe,
    no_fail2ban_for_client: None,
) -> None:
    ldif = f"dn: {probe.dn}\nchangetype: modify\nreplace: pwdReset\npwdReset: TRUE\n"
    out = host_run(PROVIDER, "ldapmodify -e relax -Q -Y EXTERNAL -H ldapi:/// "
                             f"<<'MAILGOV_LDIF'\n{ldif}\nMAILGOV_LDIF")
    assert out.rc == 0, out.stderr
    address = host_address(PROVIDER)
    # Dovecot refuses mail with the initial password (the point of the page).
    assert imap_login(client_run, address, probe.mail, probe.password).startswith("NO")
    new = new_password(int(policy["password"]["users"]["min_length"]))
    r = browse(change_steps(probe.mail, probe.password, new, lang="en"))[-1]
    assert r["status"] == 200 and r["message"] == MESSAGES["en"]["ok"], r["message"]
    assert "pwdReset" not in ldap_attrs(host_run, probe.dn, "pwdReset")
    assert imap_login(client_run, address, probe.mail, new) == "OK"


# --- PWWEB-07: a real browser (headless Chromium on the controller) -------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def page_spki_hash(ip: str, name: str, ca_file: Path) -> str:
    """base64(SHA-256(SPKI)) of the certificate the page serves, verified against the lab CA."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((ip, 443), timeout=15) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der, "no certificate from the page"
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem,
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                          capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def chromium(name: str, ip: str, spki: str | None, profile: str) -> Any:
    from selenium import webdriver  # a test dependency (pyproject): never a reason to skip
    from selenium.webdriver.chrome.service import Service

    for tool in (CHROMIUM, CHROMEDRIVER):
        assert Path(tool).is_file(), f"{tool} missing: lab/lab up installs chromium(-driver)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # explicit paths: selenium never fetches a browser itself
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--disable-sync", "--no-proxy-server",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                f"--host-resolver-rules=MAP {name} {ip}"):
        opts.add_argument(arg)
    if spki:
        # Trust exactly this key (the lab CA is not in Chromium's store): no blanket ignore.
        opts.add_argument(f"--ignore-certificate-errors-spki-list={spki}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll cond until it returns something truthy (no fixed sleeps; 60 s: a loaded 2-core
    CI machine is slow). The browser tests of webmail share it."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = cond()
            if got:
                return got
        except Exception as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} ({last})")


@pytest.mark.control("PWWEB-07", "Password page: a real browser fills the form and gets success")
def test_real_browser_change(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    page_name: str,
    policy: dict[str, Any],
    probe: Probe,
    tmp_path: Path,
) -> None:
    ip = host_address(PROVIDER)
    ca = lab_dir(REPO, lab_id()) / "pki" / "ca.crt"
    spki = page_spki_hash(ip, page_name, ca)
    url = f"https://{page_name}/"
    # Negative control: without the pinned key the browser refuses the page.
    bare = chromium(page_name, ip, None, str(tmp_path / "bare"))
    try:
        bare.get(url)
        assert MESSAGES["vi"]["title"] not in bare.page_source, "page loaded without trust"
    finally:
        bare.quit()
    from selenium.webdriver.common.by import By

    new = new_password(int(policy["password"]["users"]["min_length"]))
    drv = chromium(page_name, ip, spki, str(tmp_path / "pinned"))
    try:
        drv.get(url)
        assert drv.title == MESSAGES["vi"]["title"], drv.title
        for field, value in (("address", probe.mail), ("current", probe.password),
                             ("new", new), ("repeat", new)):
            drv.find_element(By.ID, field).send_keys(value)
        drv.find_element(By.ID, "submit").click()
        # click() returns before the POST's answer replaces the page: poll for the result
        # (CI under load: "Unable to locate element: [id=result]" right after the click).
        result = wait_for(lambda: drv.find_elements(By.ID, "result"), "the result")[0]
        assert result.text == MESSAGES["vi"]["ok"], result.text
        assert "ok" in (result.get_attribute("class") or "")
        # The stylesheet applied (CSP default-src 'self' allows it) and nothing was blocked.
        assert result.value_of_css_property("font-weight") in ("700", "bold")
        # (The browser's own favicon request is the only 404 the page leaves it.)
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"
                  and "/favicon.ico " not in e.get("message", "")]
        assert not errors, errors
    finally:
        drv.quit()
    assert imap_login(client_run, ip, probe.mail, new) == "OK"


# --- PWWEB-06: change attempts are rate-limited per client address --------------------------


@pytest.mark.control("PWWEB-06", "Password page: POSTs rate-limited per client (429), GET served")
def test_post_rate_limit(
    browse: Callable[..., list[dict[str, Any]]], page_vars: dict[str, Any]
) -> None:
    burst = int(page_vars["selfservice__post_burst"])
    # Token-less POSTs: nginx counts them before the app refuses them (403), nothing is tried.
    steps = [{"path": "/", "form": {"csrf": "x"}} for _ in range(2 * burst + 5)]
    statuses = [r["status"] for r in browse([{"path": "/"}, *steps, {"path": "/"}])]
    assert statuses[0] == 200 and statuses[-1] == 200, statuses
    posts = statuses[1:-1]
    # Earlier tests' POSTs may still use part of the burst: some served, then 429s.
    assert set(posts) <= {403, 429} and 403 in posts and 429 in posts, posts
    assert posts[-1] == 429, posts


# --- PWWEB-08: the rules are on the form before the user types ------------------------------


def expected_rules(lang: str, password: dict[str, Any]) -> list[str]:
    """The rule lines the page must show, from the DATA's policy and the page's own texts."""
    t = MESSAGES[lang]
    users, admins = password["users"], password["administrators"]
    lines = [t["rule_min_length"].format(n=int(users["min_length"])),
             t["rule_classes"].format(classes=", ".join(
                 t[f"class_{c}"] for c in users["required_classes"]))]
    if int(users.get("history", 0)):
        lines.append(t["rule_history"].format(n=int(users["history"])))
    if users.get("forbid_personal_data"):
        lines.append(t["rule_personal"])
    if (admins["min_length"], admins.get("history", 0)) != (users["min_length"],
                                                            users.get("history", 0)):
        lines.append(t["rule_admins"].format(n=int(admins["min_length"]),
                                             h=int(admins.get("history", 0))))
    return lines


@pytest.mark.control("PWWEB-08", "Password page: the password rules (from the policy) are shown "
                     "on first load, in Vietnamese and English")
def test_rules_shown_before_typing(
    host_address: Callable[[str], str], page_name: str, policy: dict[str, Any],
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    ip = host_address(PROVIDER)
    ca = lab_dir(REPO, lab_id()) / "pki" / "ca.crt"
    drv = chromium(page_name, ip, page_spki_hash(ip, page_name, ca), str(tmp_path / "rules"))
    try:
        for lang, path in (("vi", "/"), ("en", "/?lang=en")):
            drv.get(f"https://{page_name}{path}")
            assert drv.title == MESSAGES[lang]["title"], drv.title
            rules = drv.find_element(By.ID, "rules")
            # Visible (rendered, not hidden) above the form, with nothing typed yet.
            assert rules.is_displayed(), f"{lang}: the rules are not visible"
            form = drv.find_element(By.TAG_NAME, "form")
            assert rules.location["y"] < form.location["y"], "the rules are not above the form"
            assert drv.find_element(By.ID, "new").get_attribute("value") == ""
            title = drv.find_element(By.ID, "rules-title").text
            assert title == MESSAGES[lang]["rules_title"], title
            shown = [li.text for li in rules.find_elements(By.TAG_NAME, "li")]
            want = expected_rules(lang, policy["password"])
            assert shown == want, f"{lang}: shown {shown}, the policy says {want}"
            # The numbers are the data's, whatever the texts say around them.
            assert str(policy["password"]["users"]["min_length"]) in shown[0]
    finally:
        drv.quit()
