"""Domain migration benchmark: ours next to bare ldap3 writes, figures side by side.

    MAILGOV_LAB_ID=5 .venv/bin/python benchmarks/bench_migrate.py [--count 50000]
    .venv/bin/python benchmarks/bench_migrate.py --local-slapd [--count 50000]

The directory (a lab's provider, or a throwaway slapd of this machine: benchmarks/common.py)
holds ``--count`` generated mailboxes (``python -m tools.generate``, loaded once by our own
apply; later runs find them there). The data file is then migrated with ``mailgov domain
migrate OLD NEW --keep-until …`` (a copy), and:

* **ours** = validate the migrated file + connect + one paged read + plan (the override
  naming its reason: the plan trips MG609/MG610 by design) + apply, the whole reconcile;
* **bare** = connect + a loop of ``conn.modify`` carrying exactly the same modifications
  (the plan's add/delete/replace of every change), nothing else: what a hand-written ldap3
  script that already knew the answer would cost. A change that modifies nothing (none in a
  migration; a rename would be a modrdn) is not sent: slapd refuses an empty modify.

Target: ours ≤ 2× bare. Each side runs on the unmigrated directory: bare first, then its
inverse (untimed), then ours, then the plan of the original file (untimed) puts the directory
back, so the next run starts from the same state.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE  # noqa: E402

from benchmarks.common import base_dn_of, cpu, data_file, target  # noqa: E402
from mailgov.apply import apply  # noqa: E402
from mailgov.edit import domain_migrate  # noqa: E402
from mailgov.live import read_live  # noqa: E402
from mailgov.plan import Change, Plan, plan  # noqa: E402
from mailgov.validate import validate  # noqa: E402

REASON = "benchmark: domain migration"


def _mods(c: Change) -> dict[str, list[tuple[Any, list[str]]]]:
    out: dict[str, list[tuple[Any, list[str]]]] = {}
    for name, values in c.delete.items():
        out.setdefault(name, []).append((MODIFY_DELETE, list(values)))
    for name, values in c.add.items():
        out.setdefault(name, []).append((MODIFY_ADD, list(values)))
    for name, values in c.replace.items():
        out.setdefault(name, []).append((MODIFY_REPLACE, list(values)))
    return out


def bare(conn: Any, changes: list[tuple[str, dict[str, list[tuple[Any, list[str]]]]]]) -> int:
    failed = 0
    for dn, mods in changes:
        if not conn.modify(dn, mods):
            failed += 1
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50_000, help="generated mailboxes (50000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--new-domain", default="mae.gov.vn")
    ap.add_argument("--work", default="/tmp/mailgov-bench", help="work dir (data, local slapd)")
    ap.add_argument("--local-slapd", action="store_true",
                    help="run against a slapd of this machine (benchmarks/common.py)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of bare then ours (each undone after it); best of each kept")
    ap.add_argument("--nosync", action="store_true",
                    help="with --local-slapd: no fsync per write (the client's cost shows)")
    args = ap.parse_args()
    work = Path(args.work)
    source = data_file(args.count, args.seed, work)
    base = base_dn_of(source)
    with target(args, base, f"slapd-{args.count}-{args.seed}") as where:
        return run(args, where, work, source, base)


def run(args: argparse.Namespace, where: Any, work: Path, source: Path, base: str) -> int:
    original = validate(source).directory
    assert original is not None
    old = original.organization.domain
    migrated_file = work / f"migrated-{args.count}-{args.seed}.yaml"
    shutil.copy(source, migrated_file)
    t0 = time.perf_counter()
    domain_migrate(migrated_file, old, args.new_domain, date.today() + timedelta(days=365))
    edit_s = time.perf_counter() - t0

    def reconcile(path: Path) -> tuple[dict[str, float], Plan, Any, dict[str, float]]:
        with cpu(where) as used:
            _, p, res, steps = _reconcile(path)
        return used, p, res, steps

    def _reconcile(path: Path) -> tuple[float, Plan, Any, dict[str, float]]:
        steps: dict[str, float] = {}
        t = time.perf_counter()
        d = validate(path).directory
        steps["validate"] = time.perf_counter() - t
        c = where.connect()
        t1 = time.perf_counter()
        live = read_live(c, base)
        steps["read"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        p = plan(d, live, today=date.today(), allow_mass_change=REASON)
        steps["plan"] = time.perf_counter() - t1
        if p.refusals:  # never applied past a refusal: the figures would not be a reconcile's
            sys.exit(f"bench: the plan of {path.name} is refused: {list(p.refusals)[:3]}")
        todo = Plan(tuple(x for x in p.changes if x.kind != "archive"), (), ())
        t1 = time.perf_counter()
        res = apply(c, todo)
        steps["apply"] = time.perf_counter() - t1
        c.unbind()
        return time.perf_counter() - t, p, res, steps

    print(f"{where.label}: {where.uri}; {args.count} mailboxes; {old} → {args.new_domain}")
    used, p, res, _ = reconcile(source)  # load once / make sure we start from the original
    print(f"  start state: {len(p.changes)} change(s) applied in {used['wall']:.1f} s "
          f"(ok={res.ok})"
          + (f" errors {res.errors[:3]}" if not res.ok else ""))

    # the modifications, as the planner computes them against the original directory
    c = where.connect()
    mig = validate(migrated_file).directory
    forward = [x for x in plan(mig, read_live(c, base), today=date.today(),
                               allow_mass_change=REASON).changes if x.kind != "archive"]
    c.unbind()
    kinds = sorted({x.kind for x in forward})
    writes = [(x.dn, m) for x in forward if (m := _mods(x))]
    print(f"  the migration: {len(forward)} changes ({', '.join(kinds)}), {len(writes)} "
          f"modify requests (the edit of the file: {edit_s:.2f} s)")

    best: dict[str, dict[str, float]] = {}

    def keep(side: str, used: dict[str, float]) -> None:
        for k, v in used.items():
            best.setdefault(side, {})[k] = min(best.get(side, {}).get(k, float("inf")), v)

    def show(used: dict[str, float]) -> str:
        return (f"{used['wall']:.1f} s wall, CPU {used['client']:.1f} s client + "
                f"{used['server']:.1f} s server")

    failed, res = 0, None
    for n in range(1, args.rounds + 1):
        with cpu(where) as used:
            c = where.connect()
            failed = bare(c, writes)
            c.unbind()
        keep("bare", used)
        print(f"  round {n}: bare ldap3 modify loop {show(used)}, {failed} failed")
        back, _, res, _ = reconcile(source)  # the inverse, untimed for the comparison
        print(f"    (back to the original by our apply: {back['wall']:.1f} s, ok={res.ok})")
        used, p, res, steps = reconcile(migrated_file)
        keep("ours", used)
        print(f"  round {n}: ours (validate + read + plan + apply) {show(used)}, "
              f"{len(p.changes)} changes, ok={res.ok}")
        print("    wall: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        back, _, back_res, _ = reconcile(source)
        print(f"    (back to the original: {back['wall']:.1f} s, ok={back_res.ok})")
    print(f"\n  domain migration of {args.count} (best of {args.rounds}):")
    ratios = {}
    for k in ("wall", "client", "server"):
        o, b = best["ours"][k], best["bare"][k]
        ratios[k] = o / b if b else float("inf")
        print(f"    {k + ' s':<9} ours {o:8.1f}   bare {b:8.1f}   ratio {ratios[k]:5.2f}×")
    cpu_o = best["ours"]["client"] + best["ours"]["server"]
    cpu_b = best["bare"]["client"] + best["bare"]["server"]
    total = cpu_o / cpu_b if cpu_b else float("inf")
    print(f"    CPU s    ours {cpu_o:8.1f}   bare {cpu_b:8.1f}   ratio {total:5.2f}×"
          "   (client + server; target ≤ 2×)")
    ok = not failed and res is not None and res.ok
    return 0 if ok and (total if cpu_b else ratios["wall"]) <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
