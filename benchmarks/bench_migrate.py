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

from benchmarks.common import base_dn_of, data_file, target  # noqa: E402
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

    def reconcile(path: Path) -> tuple[float, Plan, Any, dict[str, float]]:
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
    t, p, res, _ = reconcile(source)  # load once / make sure we start from the original
    print(f"  start state: {len(p.changes)} change(s) applied in {t:.1f} s (ok={res.ok})"
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

    bare_s = ours_s = float("inf")
    failed, res, p, steps = 0, None, None, {}
    for n in range(1, args.rounds + 1):
        t = time.perf_counter()
        c = where.connect()
        failed = bare(c, writes)
        c.unbind()
        took = time.perf_counter() - t
        bare_s = min(bare_s, took)
        print(f"  round {n}: bare ldap3 modify loop {took:.1f} s, {failed} failed")
        back, _, res, _ = reconcile(source)  # the inverse, untimed for the comparison
        print(f"    (back to the original by our apply: {back:.1f} s, ok={res.ok})")
        took, p, res, steps = reconcile(migrated_file)
        ours_s = min(ours_s, took)
        print(f"  round {n}: ours (validate + read + plan + apply) {took:.1f} s, "
              f"{len(p.changes)} changes, ok={res.ok}")
        print("    " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
        back, _, back_res, _ = reconcile(source)
        print(f"    (back to the original: {back:.1f} s, ok={back_res.ok})")
    ratio = ours_s / bare_s if bare_s else float("inf")
    print(f"\n  domain migration of {args.count}: ours {ours_s:8.1f} s   bare {bare_s:8.1f} s   "
          f"ratio {ratio:5.2f}×   (target ≤ 2×)")
    return 0 if ratio <= 2 and not failed and res is not None and res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
