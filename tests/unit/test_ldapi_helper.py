"""The one ldapi + SASL EXTERNAL helper (module_utils/mailgov_ldapi.py) and its install path."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mailgov_ldapi",
                                              REPO / "module_utils/mailgov_ldapi.py")
assert _spec and _spec.loader
ldapi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ldapi)


def test_the_role_installs_the_same_file_not_a_copy() -> None:
    installed = REPO / "roles/mailgov_base/files/usr/local/lib/mailgov/mailgov_ldapi.py"
    assert installed.is_symlink()
    assert installed.resolve() == (REPO / "module_utils/mailgov_ldapi.py").resolve()


def test_no_other_sasl_external_bind_in_server_side_code() -> None:
    own = (REPO / "module_utils/mailgov_ldapi.py").resolve()
    paths = [*REPO.glob("library/*.py"), *REPO.glob("module_utils/*.py"),
             *(p for p in REPO.glob("roles/*/files/**/*") if p.is_file())]
    offenders = [str(p.relative_to(REPO)) for p in paths if p.resolve() != own
                 and any(s in p.read_text(encoding="utf-8", errors="replace")
                         for s in ("sasl_external_bind_s", "sasl_non_interactive_bind_s",
                                   "sasl_mechanism=", "-Y EXTERNAL"))]
    assert offenders == []


def test_message_is_one_line_from_python_ldap_args() -> None:
    exc = Exception({"desc": "Can't contact LDAP server", "info": "socket missing"})
    assert ldapi.message(exc) == "Can't contact LDAP server socket missing"
    assert ldapi.message(Exception("plain")) == "plain"
    assert ldapi.message(Exception()) == "Exception"


def test_connect_without_python_ldap_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ldap", None)  # import ldap now raises ImportError
    with pytest.raises(ldapi.LdapiError, match="python3-ldap is not installed"):
        ldapi.connect()


def test_connect_failure_names_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    class LDAPError(Exception):
        pass

    class Conn:
        def set_option(self, *_: Any) -> None: ...

        def sasl_external_bind_s(self) -> None:
            raise LDAPError({"desc": "Can't contact LDAP server"})

    fake = type(sys)("ldap")
    fake.LDAPError = LDAPError  # type: ignore[attr-defined]
    fake.OPT_REFERRALS = fake.OPT_NETWORK_TIMEOUT = fake.OPT_TIMEOUT = 0  # type: ignore[attr-defined]
    fake.initialize = lambda uri: Conn()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ldap", fake)
    with pytest.raises(ldapi.LdapiError) as err:
        ldapi.connect("ldapi://%2Frun%2Fnone")
    assert "ldapi://%2Frun%2Fnone" in str(err.value) and "Can't contact" in str(err.value)


# --- scripts/install_collections.py: the pin and the "already installed" check -----------

_ic_spec = importlib.util.spec_from_file_location("install_collections",
                                                  REPO / "scripts/install_collections.py")
assert _ic_spec and _ic_spec.loader
ic = importlib.util.module_from_spec(_ic_spec)
_ic_spec.loader.exec_module(ic)


def test_pyproject_pins_community_general_with_a_hash() -> None:
    pin = ic.pins(REPO / "pyproject.toml")["community.general"]
    assert pin["wheel"].startswith("ansible==") and len(pin["sha256"]) == 64


def test_a_pin_without_a_hash_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[tool.mailgov.collections."community.general"]\nversion = "1"\n'
                   'wheel = "ansible==1"\n', encoding="utf-8")
    with pytest.raises(ic.InstallError, match="sha256"):
        ic.pins(bad)


def test_installed_version_reads_the_manifest(tmp_path: Path) -> None:
    assert ic.installed_version(tmp_path, "community.general") is None
    d = tmp_path / "ansible_collections/community/general"
    d.mkdir(parents=True)
    (d / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": "11.4.2"}}))
    assert ic.installed_version(tmp_path, "community.general") == "11.4.2"
    # the pinned version there already: nothing is downloaded
    assert ic.install("/nonexistent/python", tmp_path, "community.general",
                      {"version": "11.4.2", "wheel": "x", "sha256": "0" * 64}) is False
