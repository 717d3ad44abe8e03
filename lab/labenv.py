"""Which lab instance a command works on, and where its state lives.

One answer for `lab/lab`, the test suites and anyone else: `MAILGOV_LAB_ID` (0-31, default 0)
selects one of several independent labs on this machine; its state (ssh key, CA, service
secrets) is `.lab/` for instance 0 and `.lab/labN/` for the others, unless `MAILGOV_LAB_DIR`
says otherwise. Standard library only: `lab/lab` runs with the system Python.

Lab plumbing, not product: it lives beside `lab/lab` (which imports it as `labenv`) and
the test suites import it as `lab.labenv` (pytest puts the repository root on sys.path);
the installed `mailgov` package does not carry it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# 31: netns names stay within 15 characters ("mgl31-client"), subnets within 10.210.0.0/16.
MAX_LAB_ID = 31


def lab_id(environ: Mapping[str, str] = os.environ) -> int:
    """The selected instance; ValueError with a readable message for a bad value."""
    raw = environ.get("MAILGOV_LAB_ID", "").strip() or "0"
    if not raw.isdigit() or not 0 <= int(raw) <= MAX_LAB_ID:
        raise ValueError(f"MAILGOV_LAB_ID must be an integer 0-{MAX_LAB_ID}, not {raw!r}")
    return int(raw)


def lab_dir(repo: Path, instance: int, environ: Mapping[str, str] = os.environ) -> Path:
    """The instance's state dir (MAILGOV_LAB_DIR wins)."""
    override = environ.get("MAILGOV_LAB_DIR")
    if override:
        return Path(override)
    return repo / ".lab" if instance == 0 else repo / ".lab" / f"lab{instance}"


def controller_state_dir(instance: int, environ: Mapping[str, str] = os.environ) -> Path:
    """The lab controller's lifecycle state (handover files, recipients, archive manifests).

    Outside the checkout, as production keeps it (mailgov_state_dir): whoever can write the
    recipients file receives every initial password, and a checkout is written by CI jobs
    and contributors (mailgov.credentials refuses such a place). MAILGOV_LAB_STATE_DIR wins;
    inventory/lab/group_vars/all/lab.yml computes the same default.
    """
    override = environ.get("MAILGOV_LAB_STATE_DIR")
    if override:
        return Path(override)
    return Path("/var/lib/mailgov-lab") / f"lab{instance}"
