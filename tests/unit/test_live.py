"""mailgov.live: the reader (ldap3 MOCK_SYNC, no server) and its one-line errors."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from ldap3 import MOCK_SYNC, NONE, Connection, Server

from mailgov import live
from mailgov.directory import ADMIN_LOCK
from mailgov.live import LiveError, connect, load_json, open_and_bind, read_live, save_json

BASE = "dc=monre,dc=gov,dc=vn"
ADMIN = f"cn=mailgov,ou=services,{BASE}"


def mock(password: str = "secret") -> Connection:
    server = Server("mock", get_info=NONE)  # no schema: postfix-book is not in ldap3
    conn = Connection(server, ADMIN, password, client_strategy=MOCK_SYNC)
    add = conn.strategy.add_entry
    add(BASE, {"objectClass": ["dcObject", "organization"], "dc": "monre", "o": "MONRE"})
    add(f"ou=services,{BASE}", {"objectClass": ["organizationalUnit"], "ou": "services"})
    add(ADMIN, {"objectClass": ["applicationProcess"], "cn": "mailgov",
                "userPassword": "secret"})
    add(f"ou=people,{BASE}", {"objectClass": ["organizationalUnit"], "ou": "people"})
    add(f"uid=natuan,ou=people,{BASE}", {
        "objectClass": ["top", "inetOrgPerson"], "uid": "natuan", "cn": "Nguyễn Anh Tuấn",
        "sn": "Nguyễn", "mail": "natuan@monre.gov.vn",
        "mailAlias": ["natuan@monre.gov.vn", "tuan.na@monre.gov.vn"],
        "mailEnabled": "TRUE", "pwdAccountLockedTime": ADMIN_LOCK,
        "userPassword": "{SSHA}hash", "telephoneNumber": "024 1234"})
    for i in range(1100):  # more than one page
        add(f"uid=nv{i},ou=people,{BASE}", {"objectClass": ["inetOrgPerson"], "uid": f"nv{i}",
                                             "cn": "Nguyễn Văn An", "sn": "Nguyễn"})
    return conn


def test_reads_every_entry_with_normalised_dns_and_raw_values() -> None:
    conn = open_and_bind(mock(), "mock", start_tls=False)
    live = read_live(conn, BASE)
    assert len(live) == 1105
    natuan = live[f"uid=natuan,ou=people,{BASE}"]
    assert natuan["cn"] == ("Nguyễn Anh Tuấn",)
    assert natuan["mailEnabled"] == ("TRUE",)  # not a Python bool
    assert natuan["pwdAccountLockedTime"] == (ADMIN_LOCK,)  # not a datetime
    assert set(natuan["mailAlias"]) == {"natuan@monre.gov.vn", "tuan.na@monre.gov.vn"}


def test_reads_only_the_managed_attributes() -> None:
    live = read_live(open_and_bind(mock(), "mock", start_tls=False), BASE)
    natuan = live[f"uid=natuan,ou=people,{BASE}"]
    assert "userPassword" not in natuan
    assert "telephoneNumber" not in natuan


def test_missing_base_is_a_clear_error() -> None:
    conn = open_and_bind(mock(), "mock", start_tls=False)
    with pytest.raises(LiveError, match="does not exist"):
        read_live(conn, "dc=nowhere,dc=vn")


def test_bad_credentials_are_one_line() -> None:
    with pytest.raises(LiveError, match=r"refused.*check --bind-dn") as err:
        open_and_bind(mock(password="wrong"), "mock", start_tls=False)
    assert "\n" not in str(err.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["ldap", "ldaps"])
def test_unreachable_server(tmp_path: Path, scheme: str, timeout: float = 2) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("", encoding="utf-8")
    with pytest.raises(LiveError, match="cannot reach") as err:
        connect(f"{scheme}://127.0.0.1:{_free_port()}", ADMIN, "x", str(ca), timeout=timeout)
    assert "\n" not in str(err.value)


def test_silent_server_times_out_with_a_fractional_timeout(tmp_path: Path) -> None:
    """A listener that never answers: a clean LiveError (ldap3 wants whole seconds)."""
    ca = tmp_path / "ca.crt"
    ca.write_text("", encoding="utf-8")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(LiveError) as err:
            connect(f"ldap://127.0.0.1:{port}", ADMIN, "x", str(ca), timeout=0.5)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"uri": "http://x"}, "ldap://"),
    ({"ca_file": None}, "CA file is needed"),
    ({"ca_file": "/nonexistent/ca.crt"}, "does not exist"),
    ({"password": None}, "bind DN and a password"),
])
def test_arguments_are_checked_before_connecting(kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"uri": "ldaps://127.0.0.1:1", "bind_dn": ADMIN, "password": "x",
                               "ca_file": "/etc/hostname", "timeout": 1, **kwargs}
    with pytest.raises(LiveError, match=needle):
        connect(**args)  # type: ignore[arg-type]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS listener on loopback with a self-signed certificate (and its CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=other.example", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(client, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1]), crt
    stop.set()
    sock.close()


def test_tls_failure_names_tls(tls_server: tuple[int, Path], tmp_path: Path) -> None:
    port, _ = tls_server
    # The CA file is some other certificate: verification must fail, and say so.
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=ca.example", "-keyout", str(tmp_path / "ok.pem"),
                    "-out", str(other)], check=True, capture_output=True)
    with pytest.raises(LiveError, match="TLS") as err:
        connect(f"ldaps://127.0.0.1:{port}", ADMIN, "x", str(other), timeout=5)
    assert "\n" not in str(err.value)


def test_saved_state_round_trip(tmp_path: Path) -> None:
    live = {f"UID=x, ou=people,{BASE}": {"mail": ("x@monre.gov.vn",)}}
    path = tmp_path / "live.json"
    save_json(live, path, BASE)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["base_dn"] == BASE
    assert load_json(path) == {f"uid=x,ou=people,{BASE}": {"mail": ("x@monre.gov.vn",)}}


def _saved(entries: str) -> str:
    return '{"mailgov_live": 1, "base_dn": "dc=x", "entries": ' + entries + "}"


@pytest.mark.parametrize(("text", "needle"), [
    ("{", "not JSON"),
    (_saved("[1]"), "expected"),
    (_saved('{"uid=x": {"mail": "x@y"}}'), "lists of text"),
    # Each kind of wrong value (the checks run at C speed: map/set, str.join).
    (_saved('{"uid=x": {"mail": ["x@y", 1]}}'), "lists of text"),
    (_saved('{"uid=x": {"mail": [null]}}'), "lists of text"),
    (_saved('{"uid=x": {"mail": [["x@y"]]}}'), "lists of text"),
    (_saved('{"uid=x": {"cn": ["a"], "mail": {"x": "y"}}}'), "lists of text"),
    (_saved('{"uid=x": ["mail"]}'), "lists of text"),
])
def test_bad_saved_state(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "live.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LiveError, match=needle):
        load_json(path)
    with pytest.raises(LiveError, match="cannot read"):
        load_json(tmp_path / "missing.json")


@pytest.mark.parametrize("text", [
    "{}",  # the audit's case: planned as an empty directory, creates for everything
    "[1]", '{"uid=x,dc=x": {"mail": ["x@y"]}}',  # a bare mapping: no marker
    '{"mailgov_live": 2, "entries": {}}', '{"entries": {}}'])
def test_only_a_saved_state_with_its_marker_is_a_live_state(tmp_path: Path, text: str) -> None:
    path = tmp_path / "live.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LiveError) as err:
        load_json(path)
    assert str(err.value) == (
        f'{path} is not a live state saved by mailgov (no "mailgov_live": 1); save one with '
        "`mailgov dump-live`")
    # ... while a saved empty directory is one
    save_json({}, path, BASE)
    assert load_json(path) == {}


def test_ldapi_sends_an_empty_authzid(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL EXTERNAL over ldapi:// with ldap3: without credentials ldap3 sends none and slapd
    2.5 answers saslBindInProgress, so the bind never completes (seen with a stock slapd by
    benchmarks/common.py); an empty authzid ("") completes it."""
    seen: dict[str, object] = {}

    def fake_bind(conn: object, uri: str, *, start_tls: bool) -> object:
        seen.update(creds=getattr(conn, "sasl_credentials", "missing"), tls=start_tls)
        return conn

    monkeypatch.setattr(live, "open_and_bind", fake_bind)
    live.connect("ldapi://%2Frun%2Fslapd%2Fldapi", None, None, None)
    assert seen == {"creds": "", "tls": False}


def test_the_fast_entry_decoder_gives_what_ldap3s_gives() -> None:
    """read_live decodes search entries itself (live._entry_fast, half of a 50,000-entry read):
    the same DN and values as ldap3's own decoder, from the same bytes on the wire."""
    from ldap3.operation.search import search_result_entry_response_to_dict_fast as ldap3s
    from ldap3.protocol.rfc4511 import (
        LDAPMessage,
        MessageID,
        PartialAttribute,
        PartialAttributeList,
        ProtocolOp,
        SearchResultEntry,
        Vals,
    )
    from ldap3.utils.asn1 import decode_message_fast
    from pyasn1.codec.ber import encoder

    entry = SearchResultEntry()
    entry["object"] = "uid=nvân,ou=people,dc=monre,dc=gov,dc=vn"
    attrs = PartialAttributeList()
    for i, (name, values) in enumerate([("mail", ["nvân@monre.gov.vn"]),
                                        ("cn", ["Nguyễn Văn Ân"]),
                                        ("mailAlias", ["a@monre.gov.vn", "b@mae.gov.vn"]),
                                        ("title", [])]):
        pa = PartialAttribute()
        pa["type"] = name
        vals = Vals()
        for j, v in enumerate(values):
            vals.setComponentByPosition(j, v.encode("utf-8"))
        pa["vals"] = vals
        attrs.setComponentByPosition(i, pa)
    entry["attributes"] = attrs
    message = LDAPMessage()
    message["messageID"] = MessageID(7)
    op = ProtocolOp()
    op.setComponentByName("searchResEntry", entry)
    message["protocolOp"] = op
    payload = decode_message_fast(encoder.encode(message))["payload"]
    theirs = ldap3s(payload, None, None, True)
    ours = live._entry_fast(payload, None, None, True)
    assert ours["dn"] == theirs["dn"] == "uid=nvân,ou=people,dc=monre,dc=gov,dc=vn"
    want = {k: tuple(v.decode("utf-8") for v in vals)
            for k, vals in theirs["raw_attributes"].items() if vals}
    assert ours["mailgov_attributes"] == want
    assert want["mailAlias"] == ("a@monre.gov.vn", "b@mae.gov.vn") and "title" not in want
