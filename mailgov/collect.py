"""`mailgov collect`: read the mail hosts through the inventory and write the day's snapshot.

One run: ``ansible-playbook playbooks/usage.yml`` (the inventory's mail hosts; each runs
``mailgov_usage_facts``, which reads its own log, last-login dict, directory and, where the
stores are, ``doveadm quota``, and writes one JSON file that the play fetches), then
:func:`merge` here turns the fetched files into ``usage-YYYY-MM-DD.json`` in the snapshot
folder. A host that cannot be reached or whose module failed gives no file: the snapshot is
still written from the others, with the host and the reason under ``hosts`` (the report
prints them as gaps). Only the days since the previous snapshot are read from the logs; the
earlier per-day counts are carried over from it (at most :data:`usage.MAX_DAYS` days), so the
log is read once, not 180 days every night.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from mailgov import usage
from mailgov.i18n import _

REPO_PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "usage.yml"


class CollectError(Exception):
    pass


def _stamp(epoch: int | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(results: Mapping[str, Mapping[str, Any] | str], day: date, domain: str,
          previous: usage.Snapshot | None, published_units: list[str],
          collected_at: str | None = None) -> dict[str, Any]:
    """A snapshot document from the hosts' results (or, per host, why there is none)."""
    first_kept = day - timedelta(days=usage.MAX_DAYS - 1)
    boxes: dict[str, dict[str, Any]] = {}

    def box(local: str) -> dict[str, Any]:
        b = boxes.get(local)
        if b is None:
            b = boxes[local] = {"last_login": 0, "login_days": set(), "read_days": set(),
                                "sent": {}, "received": {}, "storage_kib": None,
                                "quota_kib": None, "initial_password": None, "locked": False,
                                "lock_events": set()}
        return b

    if previous is not None:  # carry the days the logs are no longer read for
        for local, u in previous.mailboxes.items():
            b = box(local)
            b["last_login"] = 0 if u.last_login is None else int(
                u.last_login.replace(tzinfo=UTC).timestamp())
            b["login_days"] |= {d.isoformat() for d in u.login_days if d >= first_kept}
            b["read_days"] |= {d.isoformat() for d in u.read_days if d >= first_kept}
            for src, dst in ((u.sent, b["sent"]), (u.received, b["received"])):
                for d, n in src.items():
                    if first_kept <= d <= previous.day:
                        dst[d.isoformat()] = n
            b["lock_events"] |= {t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in u.lock_events
                                 if t.date() >= first_kept}
    hosts: dict[str, dict[str, Any]] = {}
    for host, res in sorted(results.items()):
        if isinstance(res, str):
            hosts[host] = {"ok": False, "error": res}
            continue
        errors = list(res.get("errors", []))
        hosts[host] = {"ok": not errors, "sources": res.get("sources", [])}
        if errors:
            hosts[host]["error"] = "; ".join(errors)
        for local, a in res.get("activity", {}).items():
            b = box(local)
            b["login_days"] |= set(a.get("login_days", []))
            b["read_days"] |= set(a.get("read_days", []))
            b["last_login"] = max(b["last_login"], a.get("last_login") or 0)
            # Hosts add up (both submit and deliver); the days read now all come after the
            # previous snapshot's, so nothing carried over is counted twice.
            for key in ("sent", "received"):
                for d, n in a.get(key, {}).items():
                    b[key][d] = b[key].get(d, 0) + n
            b["lock_events"] |= set(a.get("lock_events", []))
        published_units = [*published_units, *res.get("published_units", [])]
        for local, t in res.get("last_login", {}).items():
            b = box(local)
            b["last_login"] = max(b["last_login"], t)
        for local, (used, limit) in res.get("quota", {}).items():
            b = box(local)
            b["storage_kib"], b["quota_kib"] = used, limit
        for local, d in res.get("directory", {}).items():
            b = box(local)
            b["last_login"] = max(b["last_login"], d.get("pwd_last_success") or 0)
            if d.get("initial_unchanged"):
                b["initial_password"] = {"unchanged": True, "since": d.get("password_since")}
            elif b["initial_password"] is None:
                b["initial_password"] = {"unchanged": False, "since": None}
            b["locked"] = b["locked"] or bool(d.get("locked"))
            if d.get("locked_at"):
                b["lock_events"].add(d["locked_at"])
    mailboxes = {}
    for local, b in sorted(boxes.items()):
        mailboxes[local] = {
            "last_login": _stamp(b["last_login"]),
            "login_days": sorted(d for d in b["login_days"] if first_kept.isoformat() <= d),
            "read_days": sorted(d for d in b["read_days"] if first_kept.isoformat() <= d),
            "sent": {d: n for d, n in sorted(b["sent"].items()) if n},
            "received": {d: n for d, n in sorted(b["received"].items()) if n},
            "storage_kib": b["storage_kib"], "quota_kib": b["quota_kib"],
            "initial_password": b["initial_password"], "locked": b["locked"],
            "lock_events": sorted(b["lock_events"]),
        }
    return {"format": usage.FORMAT, "version": usage.VERSION,
            "organization": {"domain": domain}, "date": day.isoformat(),
            "collected_at": collected_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days": usage.MAX_DAYS, "hosts": hosts,
            "published_units": sorted(set(published_units)), "mailboxes": mailboxes}


def read_results(folder: Path, hosts: list[str], failures: Mapping[str, str]
                 ) -> dict[str, Mapping[str, Any] | str]:
    """The fetched ``<host>.json`` files; a host without one gets the reason instead."""
    out: dict[str, Mapping[str, Any] | str] = {}
    for host in hosts:
        p = folder / f"{host}.json"
        if host in failures:
            out[host] = failures[host]
            continue
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            out[host] = "no result (the play did not reach the host)"
            continue
        except (OSError, json.JSONDecodeError) as exc:
            out[host] = _("unreadable result: {error}").format(error=exc)
            continue
        out[host] = doc
    return out


def outcomes(folder: Path) -> tuple[list[str], dict[str, str]]:
    """(hosts of the play, {host: why it gave nothing}) from the ``<host>.status.json`` files
    the play writes on the controller for every host, reachable or not."""
    hosts: list[str] = []
    why: dict[str, str] = {}
    for p in sorted(folder.glob("*.status.json")):
        host = p.name[: -len(".status.json")]
        hosts.append(host)
        try:
            st = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            why[host] = _("unreadable status: {error}").format(error=exc)
            continue
        msg = " ".join(str(st.get("msg", "")).split())[:300]
        if st.get("unreachable"):
            why[host] = _("unreachable: {msg}").format(msg=msg)
        elif not st.get("ok"):
            why[host] = _("failed: {msg}").format(msg=msg)
    return hosts, why


def run_playbook(raw: Path, first: date, last: date, extra: list[str]) -> tuple[list[str],
                                                                                 dict[str, str]]:
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(REPO_PLAYBOOK),
           "-e", json.dumps({"mailgov_usage_raw_dir": str(raw),
                             "mailgov_usage_first": first.isoformat(),
                             "mailgov_usage_last": last.isoformat()}), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          cwd=REPO_PLAYBOOK.parent.parent)
    hosts, why = outcomes(raw)
    if proc.returncode not in (0, 4) or not hosts:  # 4: a host unreachable: still collect
        tail = (proc.stdout.strip() + "\n" + proc.stderr.strip())[-2000:]
        raise CollectError(_("ansible-playbook failed (exit {returncode}): {tail}").format(
            returncode=proc.returncode, tail=tail))
    return hosts, why


def collect(snapshot_dir: Path, domain: str, day: date, extra: list[str],
            published_units: list[str]) -> tuple[Path, dict[str, Any]]:
    """One collection run; returns the snapshot file written and the document."""
    previous = None
    older = [(d, p) for d, p in usage.snapshots_in(snapshot_dir) if d < day]
    if older:
        previous = usage.load(older[-1][1])
        if previous.domain != domain:
            raise CollectError(_("{path}: snapshot of {domain}, not {wanted}").format(
                path=previous.path, domain=previous.domain, wanted=domain))
    first = day - timedelta(days=usage.MAX_DAYS - 1)
    if previous is not None:
        first = max(first, previous.day + timedelta(days=1))
    with tempfile.TemporaryDirectory(prefix="mailgov-usage-") as tmp:
        hosts, failures = run_playbook(Path(tmp), first, day, extra)
        if not hosts:
            raise CollectError(_("the playbook ran on no host (inventory group mailservers)"))
        results = read_results(Path(tmp), hosts, failures)
    doc = merge(results, day, domain, previous, published_units)
    usage.parse(doc)  # what we write must be what we read
    target = snapshot_dir / usage.file_name(day)
    tmp_file = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(usage.dump(doc))
    tmp_file.replace(target)
    return target, doc
