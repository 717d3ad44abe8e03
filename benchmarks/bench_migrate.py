"""Domain migration benchmark against a lab instance (issue 14, item 8): figures side by side.

    MAILGOV_LAB_ID=5 .venv/bin/python benchmarks/bench_migrate.py [--count 50000]

The directory holds ``--count`` generated mailboxes (``python -m tools.generate``, loaded once
by our own apply, as in benchmarks/bench_reconcile.py; later runs find them there). The data
file is then migrated with ``mailgov domain migrate OLD NEW --keep-until …`` (a copy), and:

* **ours** = validate the migrated file + connect + one paged read + plan (the override
  naming its reason: the plan trips MG609/MG610 by design) + apply, the whole reconcile;
* **bare** = connect + a loop of ``conn.modify`` carrying exactly the same modifications
  (the plan's add/delete/replace of every change), nothing else: what a hand-written ldap3
  script that already knew the answer would cost.

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

from benchmarks.bench_reconcile import lab  # noqa: E402
from mailgov.apply import apply  # noqa: E402
from mailgov.edit import domain_migrate  # noqa: E402
from mailgov.live import connect, read_live  # noqa: E402
from mailgov.plan import Change, Plan, plan  # noqa: E402
from mailgov.validate import validate  # noqa: E402
from tools.generate import write as generate_file  # noqa: E402

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


def bare(conn: Any, changes: list[Change]) -> int:
    failed = 0
    for c in changes:
        if not conn.modify(c.dn, _mods(c)):
            failed += 1
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50_000, help="generated mailboxes (50000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--new-domain", default="mae.gov.vn")
    ap.add_argument("--work", default="/tmp/mailgov-bench", help="work dir (data)")
    args = ap.parse_args()
    cfg = lab()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data_file = work / f"mailboxes-{args.count}-{args.seed}.yaml"
    if not data_file.is_file():
        print(f"generating {args.count} mailboxes → {data_file}")
        generate_file(args.count, args.seed, data_file)
    original = validate(data_file).directory
    if original is None:
        sys.exit(f"bench: {data_file} does not validate")
    base = original.organization.base_dn
    old = original.organization.domain
    bind_dn = f"cn=mailgov,ou=services,{base}"
    migrated_file = work / f"migrated-{args.count}-{args.seed}.yaml"
    shutil.copy(data_file, migrated_file)
    t0 = time.perf_counter()
    domain_migrate(migrated_file, old, args.new_domain, date.today() + timedelta(days=365))
    edit_s = time.perf_counter() - t0

    def conn() -> Any:
        return connect(cfg["uri"], bind_dn, cfg["password"], cfg["ca"], 30)

    def reconcile(path: Path) -> tuple[float, Plan, Any]:
        t = time.perf_counter()
        d = validate(path).directory
        c = conn()
        p = plan(d, read_live(c, base), today=date.today(), allow_mass_change=REASON)
        todo = Plan(tuple(x for x in p.changes if x.kind != "archive"), (), ())
        res = apply(c, todo)
        c.unbind()
        return time.perf_counter() - t, p, res

    print(f"lab {cfg['id']}: {cfg['uri']}; {args.count} mailboxes; {old} → {args.new_domain}")
    t, p, res = reconcile(data_file)  # load once / make sure we start from the original
    print(f"  start state: {len(p.changes)} change(s) applied in {t:.1f} s (ok={res.ok})")

    # the modifications, as the planner computes them against the original directory
    c = conn()
    mig = validate(migrated_file).directory
    forward = [x for x in plan(mig, read_live(c, base), today=date.today(),
                               allow_mass_change=REASON).changes if x.kind != "archive"]
    c.unbind()
    print(f"  the migration: {len(forward)} modifications "
          f"(the edit of the file: {edit_s:.2f} s)")

    t = time.perf_counter()
    c = conn()
    failed = bare(c, forward)
    c.unbind()
    bare_s = time.perf_counter() - t
    print(f"  bare ldap3 modify loop: {bare_s:.1f} s, {failed} failed")
    back, _, res = reconcile(data_file)  # the inverse, untimed for the comparison
    print(f"  (back to the original by our apply: {back:.1f} s, ok={res.ok})")

    ours_s, p, res = reconcile(migrated_file)
    print(f"  ours (validate + read + plan + apply): {ours_s:.1f} s, {len(p.changes)} "
          f"changes, ok={res.ok}, refusals={list(p.refusals)}")
    back, _, res = reconcile(data_file)
    print(f"  (back to the original: {back:.1f} s, ok={res.ok})")
    ratio = ours_s / bare_s if bare_s else float("inf")
    print(f"\n  domain migration of {args.count}: ours {ours_s:8.1f} s   bare {bare_s:8.1f} s   "
          f"ratio {ratio:5.2f}×   (target ≤ 2×)")
    return 0 if ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
