"""Reconcile benchmark against a lab instance: figures side by side, ratios, in one run.

    MAILGOV_LAB_ID=3 make bench-reconcile [BENCH_ARGS="--count 50000"]

(``make bench-reconcile`` first runs scripts/bench_deps, which installs what figure 3 needs;
then ``.venv/bin/python benchmarks/bench_reconcile.py`` takes the same arguments.)

What it measures (issue 4, item 9), on the lab's provider (mail1) over StartTLS with the
reconciler's account, from this machine:

1. **No-op reconcile vs bare read.** The directory holds ``--count`` generated mailboxes
   (``python -m tools.generate``; loaded once by our own apply — the first run takes a few
   minutes, later runs find them there). Ours = validate the data file + connect + one paged
   read (``mailgov.live.read_live``) + plan + apply of the (empty) plan. Bare = connect +
   an ldap3 paged search of the same subtree and attributes, nothing else. Target ≤ 2×.
2. **1,000 creates.** ``mailgov.apply.apply`` of 1,000 ``create`` changes vs a bare loop of
   ``conn.add`` of the same 1,000 entries (other DNs), same connection kind. Target ≤ 1.5×.
3. **The same creates through Ansible**: a loop of ``community.general.ldap_entry`` (100 items
   are enough for a per-item cost). community.general is the one scripts/bootstrap installs
   into .venv/collections (pinned in pyproject.toml, the roles use the same); the module
   needs python-ldap, so the loop runs with the system python3 (Debian's python3-ldap).
   Target: ours ≥ 500× faster per item.

Entries the benchmark adds for 2. and 3. are deleted at the end; the ``--count`` mailboxes
stay (the next run's no-op). The instance no longer holds data/mailboxes.yaml afterwards:
re-run ``ansible-playbook playbooks/site.yml`` (or lab/lab reset) to get it back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ldap3 import SUBTREE  # noqa: E402

from benchmarks.common import lab, timed  # noqa: E402
from mailgov.apply import apply  # noqa: E402
from mailgov.directory import desired_entries  # noqa: E402
from mailgov.live import connect, read_live  # noqa: E402
from mailgov.plan import READ_ATTRS as PLAN_READ_ATTRS  # noqa: E402
from mailgov.plan import Change, Plan, plan  # noqa: E402
from mailgov.validate import validate  # noqa: E402
from tools.generate import write as generate_file  # noqa: E402

# The bare read asks for exactly the attributes read_live asks for.
READ_ATTRS = list(PLAN_READ_ATTRS)


def row(name: str, ours: float, theirs: float, target: str, per: str = "s") -> None:
    ratio = ours / theirs if theirs else float("inf")
    print(f"  {name:<42} ours {ours:9.3f} {per}   other {theirs:9.3f} {per}   "
          f"ratio {ratio:6.2f}×   (target {target})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50_000, help="generated mailboxes (50000)")
    ap.add_argument("--creates", type=int, default=1000, help="creates to time (1000)")
    ap.add_argument("--loop", type=int, default=100, help="ldap_entry loop items (100)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each read (best kept)")
    ap.add_argument("--per-item-ms", type=float, default=0.0,
                    help="skip 1. and 2.; compare the loop with this per-create time of ours")
    ap.add_argument("--work", default="/tmp/mailgov-bench", help="work dir (data, wheel)")
    args = ap.parse_args()
    cfg = lab()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data_file = work / f"mailboxes-{args.count}-{args.seed}.yaml"
    if not data_file.is_file():
        print(f"generating {args.count} mailboxes → {data_file}")
        generate_file(args.count, args.seed, data_file)
    directory = validate(data_file).directory
    if directory is None:
        sys.exit(f"bench: {data_file} does not validate")
    base = directory.organization.base_dn
    bind_dn = f"cn=mailgov,ou=services,{base}"

    def conn() -> Any:
        return connect(cfg["uri"], bind_dn, cfg["password"], cfg["ca"], 10)

    print(f"lab {cfg['id']}: {cfg['uri']} as {bind_dn}")

    # -- load once ---------------------------------------------------------------------------
    c = conn()
    p = plan(directory, read_live(c, base), today=date.today(), allow_mass_change=True)
    todo = [x for x in p.changes if x.kind != "archive"]
    if todo:
        print(f"loading: {len(todo)} changes ({p.counts()}) — once, a few minutes …")
        t, res = timed(lambda: apply(c, Plan(tuple(todo), (), ())))
        print(f"  loaded in {t:.1f} s ({len(todo) / t:.0f} changes/s); ok={res.ok} "
              f"errors={len(res.errors)} {res.errors[:2]}")
    c.unbind()

    if args.per_item_ms:
        return loop_only(args, cfg, work, bind_dn, directory, base)

    # -- 1. no-op reconcile vs bare paged read ------------------------------------------------
    parts: dict[str, float] = {}

    def ours_noop() -> int:
        t0 = time.perf_counter()
        result = validate(data_file)
        t1 = time.perf_counter()
        cc = conn()
        live = read_live(cc, base)
        t2 = time.perf_counter()
        pl = plan(result.directory, live, today=date.today(), allow_mass_change=True)
        t3 = time.perf_counter()
        left = Plan(tuple(x for x in pl.changes if x.kind != "archive"), (), ())
        apply(cc, left)
        cc.unbind()
        t4 = time.perf_counter()
        if not parts or t4 - t1 < parts["connect+read+plan+apply"]:
            parts.update({"validate": t1 - t0, "connect+read": t2 - t1, "plan": t3 - t2,
                          "apply (nothing)": t4 - t3, "connect+read+plan+apply": t4 - t1})
        return len(live)

    def bare_read() -> int:
        cc = conn()
        n = 0
        for _entry in cc.extend.standard.paged_search(base, "(objectClass=*)", SUBTREE,
                                                      attributes=READ_ATTRS, paged_size=1000,
                                                      generator=True):
            n += 1
        cc.unbind()
        return n

    # Interleaved, best of N each: the machine may be shared, both see the same load.
    t_bare, t_ours = float("inf"), float("inf")
    for _ in range(args.repeat):
        t, n_bare = timed(bare_read)
        t_bare = min(t_bare, t)
        t, n_ours = timed(ours_noop)
        t_ours = min(t_ours, t)
    print(f"\n1. no-op reconcile of {args.count} mailboxes ({n_ours} entries read; bare "
          f"read {n_bare}); best of {args.repeat}")
    print("  ours, parts of the best run: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    row("read+plan+apply vs bare read", parts["connect+read+plan+apply"], t_bare, "≤ 2×")
    row("validate+read+plan+apply vs bare read", t_ours, t_bare, "≤ 2×")

    # -- 2. 1,000 creates ------------------------------------------------------------------
    template = [e for e in desired_entries(directory)
                if e.dn.startswith("uid=")][: max(args.creates, args.loop)]

    def entries(tag: str, n: int) -> list[tuple[str, tuple[str, ...], dict[str, tuple[str, ...]]]]:
        out = []
        for i, e in enumerate(template[:n]):
            local = f"bench.{tag}{i:05d}"
            attrs = dict(e.attributes)
            attrs.update(uid=(local,), mail=(f"{local}@{directory.organization.domain}",),
                         mailAlias=(f"{local}@{directory.organization.domain}",),
                         mailHomeDirectory=(f"/var/vmail/bench/{local}",))
            attrs.pop("kind", None)
            attrs.pop("unit", None)
            out.append((f"uid={local},ou=people,{base}", e.object_classes, attrs))
        return out

    ours_e = entries("ours", args.creates)
    bare_e = entries("bare", args.creates)
    changes = tuple(Change("create", dn, dn, None, object_classes=oc, add=at, after=at)
                    for dn, oc, at in ours_e)
    c = conn()
    cleanup: list[str] = []
    try:
        def ours_creates() -> Any:
            return apply(c, Plan(changes, (), ()))

        def bare_adds() -> int:
            ok = 0
            for dn, oc, at in bare_e:
                ok += bool(c.add(dn, list(oc), {k: list(v) for k, v in at.items() if v}))
            return ok

        t_bare_add, n_ok = timed(bare_adds)
        cleanup += [dn for dn, _, _ in bare_e]
        t_ours_add, res = timed(ours_creates)
        cleanup += [dn for dn, _, _ in ours_e]
        print(f"\n2. {args.creates} creates (ours ok={res.ok} applied={res.applied}; "
              f"bare ok={n_ok})")
        row(f"{args.creates} creates: apply() vs bare adds", t_ours_add, t_bare_add, "≤ 1.5×")

        # -- 3. ldap_entry loop -------------------------------------------------------------
        loop_e = entries("cg", args.loop)
        cleanup += [dn for dn, _, _ in loop_e]
        t_loop, t_one = ldap_entry_loop(work, cfg, bind_dn, loop_e)
        per_ours = t_ours_add / args.creates
        per_loop = (t_loop - t_one) / (args.loop - 1) if args.loop > 1 else t_loop
        print(f"\n3. community.general.ldap_entry loop of {args.loop} (whole run "
              f"{t_loop:.1f} s, a 1-item run {t_one:.1f} s)")
        print(f"  per item: ours {per_ours * 1000:.3f} ms   ldap_entry loop "
              f"{per_loop * 1000:.1f} ms (marginal) / {t_loop / args.loop * 1000:.1f} ms "
              f"(whole run)   ours faster by {per_loop / per_ours:.0f}× (marginal), "
              f"{t_loop / args.loop / per_ours:.0f}× (whole run)   (target ≥ 500×)")
    finally:
        for dn in cleanup:
            c.delete(dn)
        c.unbind()
    return 0


def loop_only(args: argparse.Namespace, cfg: dict[str, str], work: Path, bind_dn: str,
              directory: Any, base: str) -> int:
    """Only 3., against a per-create time of ours measured before (--per-item-ms)."""
    domain = directory.organization.domain
    template = [e for e in desired_entries(directory) if e.dn.startswith("uid=")][:args.loop]
    items = []
    for i, e in enumerate(template):
        local = f"bench.cg{i:05d}"
        attrs = {k: v for k, v in e.attributes.items()}
        attrs.update(uid=(local,), mail=(f"{local}@{domain}",), mailAlias=(f"{local}@{domain}",),
                     mailHomeDirectory=(f"/var/vmail/bench/{local}",))
        items.append((f"uid={local},ou=people,{base}", e.object_classes, attrs))
    t_loop, t_one = ldap_entry_loop(work, cfg, bind_dn, items)
    per_loop = (t_loop - t_one) / (args.loop - 2) if args.loop > 2 else t_loop
    per_ours = args.per_item_ms / 1000
    print(f"3. community.general.ldap_entry loop of {args.loop - 1} (a 1-item run "
          f"{t_one:.1f} s, the loop run {t_loop:.1f} s)")
    print(f"  per item: ours {per_ours * 1000:.2f} ms   ldap_entry {per_loop * 1000:.0f} ms "
          f"(marginal) / {t_loop / (args.loop - 1) * 1000:.0f} ms (whole run)   ours faster "
          f"by {per_loop / per_ours:.0f}× (marginal), {t_loop / (args.loop - 1) / per_ours:.0f}× "
          f"(whole run)   (target ≥ 500×)")
    c = connect(cfg["uri"], bind_dn, cfg["password"], cfg["ca"], 10)
    for dn, _, _ in items:
        c.delete(dn)
    c.unbind()
    return 0


def community_general(work: Path) -> Path:
    """The collections path holding community.general as scripts/bootstrap installs it (the
    pin is pyproject.toml's [tool.mailgov.collections]: one pin for the roles and this)."""
    dest = REPO / ".venv" / "collections"
    if not (dest / "ansible_collections" / "community" / "general").is_dir():
        sys.exit("bench: community.general is not installed: run make bootstrap")
    return dest


def ldap_entry_loop(work: Path, cfg: dict[str, str], bind_dn: str,
                    items: list[Any]) -> tuple[float, float]:
    """Seconds for ansible-playbook looping ldap_entry over items, and over one item."""
    if not Path("/usr/bin/python3").is_file() or subprocess.run(
            ["/usr/bin/python3", "-c", "import ldap"], capture_output=True).returncode:
        sys.exit("bench: community.general.ldap_entry needs python-ldap in the system python3: "
                 "scripts/bench_deps installs it (make bench-reconcile runs it)")
    collections = community_general(work)
    tmp = Path(tempfile.mkdtemp(prefix="bench-cg-"))
    try:
        playbook = tmp / "loop.yml"
        playbook.write_text("""
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: /usr/bin/python3
  tasks:
    - community.general.ldap_entry:
        dn: "{{ item.dn }}"
        objectClass: "{{ item.oc }}"
        attributes: "{{ item.attrs }}"
        server_uri: "{{ uri }}"
        start_tls: true
        ca_path: "{{ ca }}"
        bind_dn: "{{ bind_dn }}"
        bind_pw: "{{ bind_pw }}"
      loop: "{{ items }}"
      no_log: true
""", encoding="utf-8")
        cfg_file = tmp / "ansible.cfg"
        cfg_file.write_text("[defaults]\n", encoding="utf-8")  # not the project's config
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections),
               "ANSIBLE_CONFIG": str(cfg_file), "ANSIBLE_LOCALHOST_WARNING": "false",
               "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
        ansible = str(REPO / ".venv" / "bin" / "ansible-playbook")

        def run(batch: list[Any], name: str) -> float:
            extra = tmp / f"{name}.json"
            extra.write_text(json.dumps({
                "uri": cfg["uri"], "ca": cfg["ca"], "bind_dn": bind_dn,
                "bind_pw": cfg["password"],
                "items": [{"dn": dn, "oc": list(oc),
                           "attrs": {k: list(v) for k, v in at.items() if v}}
                          for dn, oc, at in batch]}), encoding="utf-8")
            extra.chmod(0o600)
            t = time.perf_counter()
            out = subprocess.run([ansible, "-i", "localhost,", str(playbook), "-e",
                                  f"@{extra}"], env=env, capture_output=True, text=True,
                                 check=False, cwd=tmp)
            took = time.perf_counter() - t
            if out.returncode != 0:
                sys.exit(f"bench: ldap_entry loop failed:\n{out.stdout[-2000:]}"
                         f"{out.stderr[-2000:]}")
            return took

        t_one = run(items[:1], "one")
        t_all = run(items[1:], "all")  # the first exists already: loop over the others
        return t_all, t_one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
