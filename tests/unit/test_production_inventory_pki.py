"""lab/production-inventory's certificates: made once, re-issued before they expire.

A lab state dir outlives a year: its host certificates (365 days) must not expire under the
controller, and lab/future needs them valid on the hosts' clock and a year ahead.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "lab" / "production-inventory"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("production_inventory", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _days_left(crt: Path) -> int:
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(crt)],
                         capture_output=True, text=True, check=True).stdout
    stamp = subprocess.run(["date", "-u", "-d", end.split("=", 1)[1].strip(), "+%s"],
                           capture_output=True, text=True, check=True).stdout
    now = subprocess.run(["date", "-u", "+%s"], capture_output=True, text=True,
                         check=True).stdout
    return (int(stamp) - int(now)) // 86400


def test_certificates_made_once_and_renewed_before_expiry(tmp_path: Path) -> None:
    pi = _load()
    pki = tmp_path / "pki"
    pi.make_pki(pki, 7)
    crt = pki / "mail1.crt"
    first = crt.read_bytes()
    assert 363 <= _days_left(crt) <= 365
    pi.make_pki(pki, 7)  # still valid for a year: kept as it is
    assert crt.read_bytes() == first
    # One that expires within the renewal window (here: made for 10 days) is re-issued.
    pi.make_pki(pki, 7, cert_days=10, renew_within_days=400)
    assert 9 <= _days_left(crt) <= 10
    pi.make_pki(pki, 7)
    assert 363 <= _days_left(crt) <= 365, "an expiring certificate was not re-issued"
    # lab/future: valid on both clocks, a year ahead and more.
    pi.make_pki(pki, 7, cert_days=425, renew_within_days=395)
    assert _days_left(crt) >= 424
