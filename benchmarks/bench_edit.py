"""Edit commands and import next to one validate (issue 15, item 5): figures side by side.

On a generated 50,000-mailbox file (tools.generate, seed 1), in one run:
  * ``mailgov validate`` of the file,
  * each edit command (``add``, ``cancel``, ``suspend``, ``restore``, ``move``, ``rename``,
    ``set``), each on a fresh copy of the file (the copy is not timed),
  * ``mailgov import`` of a 1,000-row CSV (Vietnamese names, units of the file),
and how many times each parses a data file (the loader's ``load_file``): an edit reads the
file once and checks its result once, an import the same for the whole batch, never once per
row. Targets: every edit <= 2x validate, the import <= 3x validate (PASS/FAIL).

A script, not a test: CPU seconds of this process, best of N runs (the machine is shared).

    .venv/bin/python benchmarks/bench_edit.py [--count 50000] [--rows 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailgov import edit, loader  # noqa: E402
from mailgov.cli import main as mailgov  # noqa: E402
from mailgov.validate import validate  # noqa: E402
from tools.generate import write  # noqa: E402
from tools.vietnamese_names import random_name  # noqa: E402


def timed(runs: int, setup: Callable[[], None], fn: Callable[[], object]) -> tuple[float, int]:
    """Best CPU seconds over ``runs`` (``setup`` untimed before each), and how many data
    files the last run parsed."""
    best = float("inf")
    parses = 0
    for _ in range(runs):
        setup()
        gc.collect()
        count = [0]
        real = loader.load_file

        def counting(*a: object, _real: Callable[..., object] = real, _count: list[int] = count,
                     **k: object) -> object:
            _count[0] += 1
            return _real(*a, **k)

        # the loader (load) and the edit's check of its result (edit.load_file) both parse
        loader.load_file = edit.load_file = counting  # type: ignore[assignment]
        try:
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
        finally:
            loader.load_file = edit.load_file = real  # type: ignore[assignment]
        parses = count[0]
    return best, parses


def quiet(*argv: str) -> Callable[[], int]:
    def run() -> int:
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()) as err:
            code = mailgov(list(argv))
        if code != 0:
            raise SystemExit(f"mailgov {' '.join(argv)} exited {code}: {err.getvalue()}")
        return code
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--rows", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mailgov-bench-edit-") as tmp:
        base = Path(tmp) / "base.yaml"
        write(args.count, 1, base)
        work = Path(tmp) / "mailboxes.yaml"
        result = validate(base)
        d = result.directory
        assert d is not None, result.problems[:3]
        active = [m for m in d.mailboxes if m.state == "active" and m.kind == "personal"
                  and not any(m.address in (u.head, *u.mailbox.delegates) for u in d.units)]
        suspended = next(m for m in d.mailboxes if m.state == "suspended")
        someone = active[len(active) // 2]
        other_unit = next(u.id for u in d.units if u.id != someone.unit and u.dissolved is None)
        units = [u.id for u in d.units if u.dissolved is None]
        rng = random.Random(15)
        sheet = Path(tmp) / "people.csv"
        known = {(m.name, m.unit) for m in d.mailboxes}
        rows: dict[tuple[str, str], None] = {}
        while len(rows) < args.rows:  # new people: no repeat of the file's or the sheet's
            key = (random_name(rng), rng.choice(units))
            if key not in known:
                rows[key] = None
        sheet.write_text("name,unit,title\n" + "".join(
            f"{name},{unit},Chuyên viên\n" for name, unit in rows), encoding="utf-8")

        def fresh() -> None:
            shutil.copyfile(base, work)

        w = str(work)
        cases: list[tuple[str, Callable[[], object], float]] = [
            ("add", quiet("add", "Nguyễn Văn An", "--unit", someone.unit, "--request",
                          "1/QĐ-TCCB", "--data", w), 2.0),
            ("cancel", quiet("cancel", someone.address, "--reason", "left", "--request",
                             "1/QĐ-TCCB", "--data", w), 2.0),
            ("suspend", quiet("suspend", someone.address, "--reason", "Nghỉ phép",
                              "--request", "1/QĐ-TCCB", "--data", w), 2.0),
            ("restore", quiet("restore", suspended.address, "--data", w), 2.0),
            ("move", quiet("move", someone.address, other_unit, "--request", "1/QĐ-TCCB",
                           "--data", w), 2.0),
            ("rename", quiet("rename", someone.address, "--name",
                             someone.name.rsplit(" ", 1)[0] + " Hà", "--request",
                             "1/QĐ-TCCB", "--data", w), 2.0),
            ("set", quiet("set", someone.address, "--quota", "4096", "--title", "Trưởng phòng",
                          "--data", w), 2.0),
            (f"import {args.rows} rows", quiet("import", str(sheet), "--request", "1/QĐ-TCCB",
                                               "--data", w), 3.0),
        ]
        figures = {"validate": timed(args.runs, fresh, quiet("validate", w))}
        for name, fn, _goal in cases:
            figures[name] = timed(args.runs, fresh, fn)
    v = figures["validate"][0]
    print(f"{args.count:,} mailboxes; CPU seconds, best of {args.runs}\n")
    print(f"{'command':22} {'CPU s':>7} {'× validate':>11} {'parses':>7}  goal")
    print(f"{'validate':22} {v:7.3f} {1:11.2f} {figures['validate'][1]:7d}")
    ok = True
    for name, _fn, goal in cases:
        secs, parses = figures[name]
        passed = secs <= goal * v
        ok &= passed
        print(f"{name:22} {secs:7.3f} {secs / v:11.2f} {parses:7d}  ≤ {goal:g}× "
              f"{'PASS' if passed else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
