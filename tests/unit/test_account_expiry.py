"""The first-login deadline job's decision (roles/openldap, mailgov-account-expiry): no LDAP."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

_PATH = (Path(__file__).resolve().parents[2]
         / "roles/openldap/files/usr/local/sbin/mailgov-account-expiry")
_loader = importlib.machinery.SourceFileLoader("mailgov_account_expiry", str(_PATH))
_spec = importlib.util.spec_from_loader("mailgov_account_expiry", _loader)
assert _spec
ae = importlib.util.module_from_spec(_spec)
sys.modules["mailgov_account_expiry"] = ae
_loader.exec_module(ae)

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
ADMINS = "cn=administrators,ou=policies,dc=monre,dc=gov,dc=vn"
CFG = ae.Config("ldapi:///", "ou=people,dc=monre,dc=gov,dc=vn", 5, {ADMINS.lower(): 1})


def entry(uid: str, days_ago: float, reset: bool = True, **extra: str) -> tuple[str, Any]:
    attrs = {"mail": [f"{uid}@monre.gov.vn"],
             "pwdChangedTime": [(NOW - timedelta(days=days_ago)).strftime("%Y%m%d%H%M%SZ")]}
    if reset:
        attrs["pwdReset"] = ["TRUE"]
    attrs.update({k: [v] for k, v in extra.items()})
    return f"uid={uid},ou=people,dc=monre,dc=gov,dc=vn", attrs


def due(*entries: tuple[str, Any]) -> dict[str, float]:
    return {d.address.split("@")[0]: d.days for d in ae.due_for_lock(entries, CFG, NOW)}


def test_users_locked_after_their_days_only() -> None:
    assert due(entry("old", 5.1), entry("young", 4.9)) == {"old": 5.1}


def test_administrators_use_their_policy() -> None:
    # The DN as slapd returns it may differ in case and spacing.
    weird = "CN=Administrators, ou=policies,dc=monre,dc=gov,dc=vn"
    got = due(entry("adm", 1.5, pwdPolicySubentry=weird), entry("usr", 1.5))
    assert got == {"adm": 1.5}


def test_not_reset_or_already_locked_are_left_alone() -> None:
    got = due(entry("changed", 60, reset=False),
              entry("locked", 60, pwdAccountLockedTime=ae.PERMANENT_LOCK),
              entry("failures", 60, pwdAccountLockedTime="20261120000000Z"))
    # A lock from failed logins becomes the permanent one: the initial password stays unusable.
    assert got == {"failures": 60.0}


def test_creation_time_when_no_change_time() -> None:
    dn, attrs = entry("legacy", 0)
    del attrs["pwdChangedTime"]
    attrs["createTimestamp"] = [(NOW - timedelta(days=9)).strftime("%Y%m%d%H%M%SZ")]
    assert due((dn, attrs)) == {"legacy": 9.0}


def test_fractional_generalized_time() -> None:
    assert ae.parse_time("20261129120000.123456Z") == NOW
    assert ae.parse_time("garbage") is None


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"ldap_uri": "ldapi:///", "people_dn": "x", "default_days": 0}))
    assert ae.main(["--config", str(bad)]) == 2
    assert "bad configuration" in capsys.readouterr().err
