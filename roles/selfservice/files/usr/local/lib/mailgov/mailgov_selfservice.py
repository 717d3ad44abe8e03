#!/usr/bin/python3
"""mailgov self-service password page (roles/selfservice, docs/selfservice.md).

A WSGI app run by gunicorn behind nginx. One form: address, current password, new password
twice. The change is an LDAP Password Modify (RFC 3062) done AS the person, over StartTLS to
the directory provider, so slapd's password policy (ppolicy, ppm, mailgov_pwcheck) decides
everything; this page only passes its verdict through, translated. It works for an account
with pwdReset TRUE (first login after an initial or reset password): slapd allows exactly this
operation in such a session.

Standard library + python3-ldap (Debian's python-ldap: the openldap role already installs it
on the provider, and it decodes the ppolicy response control, whose error code tells the
refusal reason without parsing texts). Passwords are never logged nor echoed back.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import ipaddress
import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

import ldap
import ldap.dn
from ldap.controls import DecodeControlTuples
from ldap.controls.ppolicy import PasswordPolicyControl

CONFIG_FILE = os.environ.get("MAILGOV_SELFSERVICE_CONFIG", "/etc/mailgov/selfservice.json")
COOKIE = "__Host-mailgov-csrf"  # __Host-: Secure, Path=/, no Domain, enforced by browsers
MAX_BODY = 8192
MAX_PASSWORD = 256

StartResponse = Callable[..., Any]

# --- messages (Vietnamese first; English with ?lang=en) ------------------------------------

MESSAGES: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Đổi mật khẩu thư điện tử",
        "intro": "Đổi mật khẩu tài khoản thư điện tử công vụ (bắt buộc ở lần đăng nhập đầu "
        "tiên và sau khi quản trị viên đặt lại mật khẩu).",
        "address": "Địa chỉ thư điện tử",
        "current": "Mật khẩu hiện tại",
        "new": "Mật khẩu mới",
        "repeat": "Nhập lại mật khẩu mới",
        "submit": "Đổi mật khẩu",
        "other_lang": "English",
        "ok": "Đã đổi mật khẩu. Từ bây giờ hãy dùng mật khẩu mới để đăng nhập thư điện tử.",
        "bad_credentials": "Sai địa chỉ thư điện tử hoặc mật khẩu hiện tại.",
        "missing": "Vui lòng điền đầy đủ các ô.",
        "mismatch": "Hai lần nhập mật khẩu mới không giống nhau.",
        "too_long": "Mật khẩu quá dài.",
        "too_short": "Mật khẩu mới quá ngắn so với quy định.",
        "in_history": "Mật khẩu mới trùng với một mật khẩu đã dùng gần đây. "
        "Hãy chọn mật khẩu khác.",
        "too_young": "Mật khẩu vừa được đổi gần đây; vui lòng thử lại sau.",
        "account_name": "Mật khẩu mới không được chứa tên tài khoản.",
        "owner_name": "Mật khẩu mới không được chứa họ tên của chủ tài khoản.",
        "quality": "Mật khẩu mới không đạt yêu cầu về độ phức tạp (các loại ký tự bắt buộc).",
        "not_allowed": "Tài khoản này không được tự đổi mật khẩu; hãy liên hệ quản trị viên.",
        "refused": "Máy chủ từ chối mật khẩu mới.",
        "csrf": "Phiên làm việc không hợp lệ hoặc đã hết hạn. Hãy tải lại trang và thử lại.",
        "unavailable": "Hệ thống tạm thời không xử lý được yêu cầu; vui lòng thử lại sau.",
        "not_found": "Không tìm thấy trang.",
        "rules_title": "Yêu cầu đối với mật khẩu mới",
        "rule_min_length": "Dài ít nhất {n} ký tự.",
        "rule_classes": "Có đủ các loại ký tự: {classes}.",
        "rule_history": "Không trùng với {n} mật khẩu đã dùng gần nhất.",
        "rule_personal": "Không chứa tên tài khoản hay họ tên của chủ tài khoản.",
        "rule_admins": "Tài khoản quản trị: dài ít nhất {n} ký tự, không trùng với {h} mật khẩu "
        "đã dùng gần nhất.",
        "class_upper": "chữ hoa (A-Z)",
        "class_lower": "chữ thường (a-z)",
        "class_digit": "chữ số (0-9)",
        "class_special": "ký tự đặc biệt (!, #, @, ...)",
    },
    "en": {
        "title": "Change your e-mail password",
        "intro": "Change the password of your official e-mail account (required at the first "
        "login and after an administrator has reset your password).",
        "address": "E-mail address",
        "current": "Current password",
        "new": "New password",
        "repeat": "Repeat the new password",
        "submit": "Change password",
        "other_lang": "Tiếng Việt",
        "ok": "Your password has been changed. Use the new password for e-mail from now on.",
        "bad_credentials": "Wrong address or current password.",
        "missing": "Please fill in every field.",
        "mismatch": "The two new passwords are not the same.",
        "too_long": "The password is too long.",
        "too_short": "The new password is shorter than the policy allows.",
        "in_history": "The new password was used recently. Choose another one.",
        "too_young": "The password was changed too recently; try again later.",
        "account_name": "The new password must not contain the account name.",
        "owner_name": "The new password must not contain the owner's name.",
        "quality": "The new password does not meet the complexity rules (required kinds of "
        "characters).",
        "not_allowed": "This account may not change its own password; contact an administrator.",
        "refused": "The server refused the new password.",
        "csrf": "Invalid or expired session. Reload the page and try again.",
        "unavailable": "The service cannot handle the request right now; try again later.",
        "not_found": "Page not found.",
        "rules_title": "Rules for the new password",
        "rule_min_length": "At least {n} characters long.",
        "rule_classes": "Contains every kind of character: {classes}.",
        "rule_history": "Not one of your last {n} passwords.",
        "rule_personal": "Does not contain the account name or the owner's name.",
        "rule_admins": "Administrator accounts: at least {n} characters, not one of the last "
        "{h} passwords.",
        "class_upper": "upper-case letters (A-Z)",
        "class_lower": "lower-case letters (a-z)",
        "class_digit": "digits (0-9)",
        "class_special": "special characters (!, #, @, ...)",
    },
}

# ppolicy response control error codes (draft-behera-ldap-password-policy) -> message key.
PPOLICY_ERRORS = {
    3: "not_allowed",  # passwordModNotAllowed
    5: "quality",  # insufficientPasswordQuality (the check module's refusals)
    6: "too_short",  # passwordTooShort
    7: "too_young",  # passwordTooYoung
    8: "in_history",  # passwordInHistory
}

# The check module's own texts (mailgov_pwcheck.c) name the rule; they refine "quality".
INFO_TEXTS = (
    ("account name", "account_name"),
    ("owner's name", "owner_name"),
    ("too short", "too_short"),
    ("history", "in_history"),
)


def client_of(environ: dict[str, Any]) -> str:
    """The browser's address: nginx's X-Forwarded-For (it sets the header to $remote_addr,
    replacing whatever the browser sent; only nginx reaches the app's socket, PWWEB-05)."""
    try:
        return str(ipaddress.ip_address(environ.get("HTTP_X_FORWARDED_FOR", "").strip()))
    except ValueError:
        return "-"


def log(address: str, result: str, client: str = "-") -> None:
    """One line per attempt to the journal (stderr): client, address and outcome, no secret.
    fail2ban's selfservice jail counts the bad_credentials lines per client (F2B-04)."""
    safe = re.sub(r"[^A-Za-z0-9@._+-]", "?", address)[:120] or "-"
    print(f"password change client={client} address={safe} result={result}", file=sys.stderr,
          flush=True)


class App:
    def __init__(self, config: dict[str, Any], secret: bytes) -> None:
        self.uri: str = config["ldap_uri"]
        self.ca_file: str = config["ca_file"]
        self.people_dn: str = config["people_dn"]
        self.domain: str = config["domain"].lower()
        self.timeout: float = float(config.get("ldap_timeout", 10))
        self.secret = secret
        self.local_re = re.compile(config.get("local_part_pattern", r"^[a-z0-9][a-z0-9._-]*$"))
        # The directory's password policy (the data's policy.password), shown before the user
        # types; slapd's ppolicy and check module still decide.
        self.rules: dict[str, dict[str, Any]] = config.get("password_rules", {})

    def rules_html(self, lang: str) -> str:
        """The password rules as a list (users'; administrators' where stricter)."""
        t = MESSAGES[lang]
        users = self.rules.get("users")
        if not users:
            return ""
        items = [t["rule_min_length"].format(n=int(users["min_length"]))]
        classes = [t[f"class_{c}"] for c in users.get("required_classes", [])
                   if f"class_{c}" in t]
        if classes:
            items.append(t["rule_classes"].format(classes=", ".join(classes)))
        if int(users.get("history", 0)) > 0:
            items.append(t["rule_history"].format(n=int(users["history"])))
        if users.get("forbid_personal_data"):
            items.append(t["rule_personal"])
        admins = self.rules.get("administrators")
        if admins and (int(admins["min_length"]), int(admins.get("history", 0))) != (
                int(users["min_length"]), int(users.get("history", 0))):
            items.append(t["rule_admins"].format(n=int(admins["min_length"]),
                                                 h=int(admins.get("history", 0))))
        lis = "".join(f"<li>{html.escape(i)}</li>" for i in items)
        return (f'<section id="rules" aria-labelledby="rules-title">'
                f'<h2 id="rules-title">{html.escape(t["rules_title"])}</h2>'
                f"<ul>{lis}</ul></section>\n")

    # --- CSRF: a random token in a cookie, the form carries its HMAC under the host secret ----

    def form_token(self, cookie_token: str) -> str:
        return hmac.new(self.secret, cookie_token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie_token: str | None, form_token: str) -> bool:
        if not cookie_token or not form_token:
            return False
        return hmac.compare_digest(self.form_token(cookie_token), form_token)

    # --- the directory -----------------------------------------------------------------------

    def person_dn(self, address: str) -> str | None:
        """The DN of an address, by the directory's layout (uid=<local>,ou=people,<base>)."""
        local, sep, domain = address.rpartition("@")
        if not sep or domain != self.domain or not self.local_re.match(local):
            return None
        return f"uid={ldap.dn.escape_dn_chars(local)},{self.people_dn}"

    def change(self, dn: str, old: str, new: str) -> str:
        """Bind as the person, then Password Modify; the result key of MESSAGES (or 'ok')."""
        conn = ldap.initialize(self.uri)
        try:
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
            conn.set_option(ldap.OPT_REFERRALS, 0)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
            conn.set_option(ldap.OPT_TIMEOUT, self.timeout)
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self.ca_file)
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
            conn.start_tls_s()
            try:
                conn.simple_bind_s(dn, old, serverctrls=[PasswordPolicyControl()])
            except ldap.INVALID_CREDENTIALS:
                # Also a locked account (olcPPolicyUseLockout FALSE): no account-state oracle.
                return "bad_credentials"
            try:
                conn.passwd_s(dn, old, new, serverctrls=[PasswordPolicyControl()])
            except ldap.LDAPError as exc:
                return refusal(exc)
            return "ok"
        except (ldap.LDAPError, ValueError):
            # Directory down, TLS not verified (an unreadable CA file raises ValueError at
            # OPT_X_TLS_NEWCTX): never fall back to anything weaker, just "try later".
            return "unavailable"
        finally:
            with contextlib.suppress(ldap.LDAPError):
                conn.unbind_s()

    # --- HTTP ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        lang = "en" if query.get("lang", [""])[0] == "en" else "vi"
        if environ.get("PATH_INFO", "/") not in ("", "/"):
            return self.page(start_response, lang, "404 Not Found", "not_found", None)
        method = environ.get("REQUEST_METHOD", "GET")
        cookie_token = read_cookie(environ.get("HTTP_COOKIE", ""))
        if method in ("GET", "HEAD"):
            return self.page(start_response, lang, "200 OK", None, cookie_token)
        if method != "POST":
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD, POST")])
            return [b""]
        form = read_form(environ)
        if form is None:
            return self.page(start_response, lang, "413 Content Too Large", "too_long",
                             cookie_token)
        address = form.get("address", "").strip().lower()
        if not self.csrf_ok(cookie_token, form.get("csrf", "")):
            log(address, "csrf", client_of(environ))
            return self.page(start_response, lang, "403 Forbidden", "csrf", None)
        key, status = self.handle(address, form)
        log(address, key, client_of(environ))
        code = {"ok": "200 OK", "unavailable": "503 Service Unavailable"}.get(
            key, "400 Bad Request")
        return self.page(start_response, lang, code, key, cookie_token, ok=status,
                         address=address if not status else "")

    def handle(self, address: str, form: dict[str, str]) -> tuple[str, bool]:
        old, new, repeat = form.get("current", ""), form.get("new", ""), form.get("repeat", "")
        # An empty password would be an unauthenticated bind, which "succeeds": never send it.
        if not address or not old or not new or not repeat:
            return "missing", False
        if max(len(old), len(new)) > MAX_PASSWORD:
            return "too_long", False
        if new != repeat:
            return "mismatch", False
        dn = self.person_dn(address)
        if dn is None:
            return "bad_credentials", False
        key = self.change(dn, old, new)
        return key, key == "ok"

    def page(self, start_response: StartResponse, lang: str, status: str, message: str | None,
             cookie_token: str | None, ok: bool = False, address: str = "") -> list[bytes]:
        t = MESSAGES[lang]
        headers = [("Content-Type", "text/html; charset=utf-8")]
        if not cookie_token:
            cookie_token = secrets.token_urlsafe(32)
            headers.append(("Set-Cookie", f"{COOKIE}={cookie_token}; Path=/; Secure; HttpOnly; "
                                          "SameSite=Strict"))
        esc = html.escape
        action = "/?lang=en" if lang == "en" else "/"
        other = "/" if lang == "en" else "/?lang=en"
        note = ""
        if message:
            cls = "ok" if ok else "error"
            note = f'<p class="{cls}" id="result" role="status">{esc(t[message])}</p>\n'
        body = f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(t['title'])}</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<main>
<p class="lang"><a href="{other}">{esc(t['other_lang'])}</a></p>
<h1>{esc(t['title'])}</h1>
<p>{esc(t['intro'])}</p>
{note}{self.rules_html(lang)}<form method="post" action="{action}" autocomplete="off">
<input type="hidden" name="csrf" value="{self.form_token(cookie_token)}">
<label for="address">{esc(t['address'])}</label>
<input id="address" name="address" type="email" required autocomplete="username"
 value="{esc(address)}">
<label for="current">{esc(t['current'])}</label>
<input id="current" name="current" type="password" required autocomplete="current-password">
<label for="new">{esc(t['new'])}</label>
<input id="new" name="new" type="password" required autocomplete="new-password">
<label for="repeat">{esc(t['repeat'])}</label>
<input id="repeat" name="repeat" type="password" required autocomplete="new-password">
<button type="submit" id="submit">{esc(t['submit'])}</button>
</form>
</main>
</body>
</html>
"""
        data = body.encode("utf-8")
        headers.append(("Content-Length", str(len(data))))
        start_response(status, headers)
        return [data]


def refusal(exc: ldap.LDAPError) -> str:
    """The message key for a refused Password Modify: the ppolicy control, then the text."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    text = str(info.get("info", "")).lower()
    for needle, key in INFO_TEXTS:
        if needle in text:
            return key
    try:
        for ctrl in DecodeControlTuples(info.get("ctrls") or []):
            if isinstance(ctrl, PasswordPolicyControl) and ctrl.error in PPOLICY_ERRORS:
                return PPOLICY_ERRORS[ctrl.error]
    except (ldap.LDAPError, ValueError, TypeError):
        pass
    if isinstance(exc, ldap.CONSTRAINT_VIOLATION):
        return "refused"
    if isinstance(exc, (ldap.INSUFFICIENT_ACCESS, ldap.UNWILLING_TO_PERFORM)):
        return "not_allowed"
    return "unavailable"


def read_cookie(header: str) -> str | None:
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    value = morsel.value if morsel else ""
    return value if re.fullmatch(r"[A-Za-z0-9_-]{20,100}", value) else None


def read_form(environ: dict[str, Any]) -> dict[str, str] | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}
    if length > MAX_BODY:
        return None
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in fields.items()}


def load() -> App:
    with open(CONFIG_FILE, encoding="utf-8") as fh:
        config = json.load(fh)
    # The CSRF key: systemd hands the root-only file over as a credential (LoadCredential).
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY", "")
    path = os.path.join(cred_dir, "csrf-secret") if cred_dir else config["secret_file"]
    with open(path, "rb") as fh:
        secret = fh.read().strip()
    if len(secret) < 32:
        raise SystemExit("selfservice: the CSRF secret is missing or too short")
    return App(config, secret)


app = load() if __name__ != "__main__" else None
