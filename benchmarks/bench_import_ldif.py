"""`mailgov import-ldif` of a whole directory (issue 15, item 3): figures side by side, one run.

A generated 50,000-mailbox file (tools.generate, seed 1) is turned into the directory mailgov
would build from it (``desired_entries``: units, people, lists, delegates) and written as LDIF
the way ``slapcat`` writes it (the ``ldif`` package's writer, base64 where RFC 2849 needs it).
Then, in one run:
  * the bare parse of that LDIF (``ldif.LDIFParser``: the floor of any LDIF reading here),
  * one ``mailgov validate`` of the original data file,
  * ``mailgov import-ldif`` of the LDIF (parse, map, validate the result, write it),
each the best CPU seconds of N runs in this process, and the import's wall clock. No target is
set by the issue; the figures say what an admin waits for when starting from today's
directory, and how much of it is the LDIF parse.

    .venv/bin/python benchmarks/bench_import_ldif.py [--count 50000] [--runs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import ldif

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailgov.cli import main as mailgov  # noqa: E402
from mailgov.directory import desired_entries  # noqa: E402
from mailgov.validate import validate  # noqa: E402
from tools.generate import write  # noqa: E402

REQUEST = "15/QĐ-CNTT"


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Best CPU and best wall seconds over ``runs`` runs (CPU: the machine is shared)."""
    cpu = wall = float("inf")
    for _ in range(runs):
        gc.collect()
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu = min(cpu, time.process_time() - c)
        wall = min(wall, time.perf_counter() - w)
    return cpu, wall


def write_ldif(data: Path, out: Path, today: date) -> int:
    result = validate(data, today=today)
    if result.directory is None:
        raise SystemExit(f"generated data is not valid: {result.problems[:3]}")
    n = 0
    with out.open("wb") as fh:
        writer = ldif.LDIFWriter(fh)
        for e in desired_entries(result.directory, today):
            record = {"objectClass": list(e.object_classes),
                      **{k: list(v) for k, v in e.attributes.items()}}
            writer.unparse(e.dn, record)
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--count", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args(argv)
    today = date.today()
    with tempfile.TemporaryDirectory() as tmp:
        data, export, out = Path(tmp, "data.yaml"), Path(tmp, "dir.ldif"), Path(tmp, "out.yaml")
        write(args.count, 1, data)
        entries = write_ldif(data, export, today)
        print(f"{args.count:,} mailboxes: data {data.stat().st_size / 1e6:.1f} MB, LDIF "
              f"{entries:,} entries, {export.stat().st_size / 1e6:.1f} MB")

        def parse() -> None:
            with export.open("rb") as fh:
                for _ in ldif.LDIFParser(fh).parse():
                    pass

        def run_import() -> None:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()) as err:
                code = mailgov(["import-ldif", str(export), "--request", REQUEST,
                                "--today", today.isoformat(), "-o", str(out)])
            if code != 0:
                raise SystemExit(f"import-ldif exited {code}: {err.getvalue()[-2000:]}")

        figures = {
            "bare LDIF parse (ldif)": best_of(args.runs, parse),
            "mailgov validate (data file)": best_of(args.runs, lambda: validate(data, today=today)),
            "mailgov import-ldif": best_of(args.runs, run_import),
        }
        imported = validate(out, today=today)
        boxes = len(imported.directory.mailboxes) if imported.directory else 0
    print(f"\n(best of {args.runs})                   CPU s    wall s")
    for name, (cpu, wall) in figures.items():
        print(f"{name:32s} {cpu:7.2f} {wall:9.2f}")
    parse_cpu = figures["bare LDIF parse (ldif)"][0]
    imp_cpu = figures["mailgov import-ldif"][0]
    print(f"\nimport-ldif / bare parse: {imp_cpu / parse_cpu:.2f}x; the imported file validates "
          f"{'clean' if imported.ok else 'WITH PROBLEMS'} with {boxes:,} mailboxes")
    return 0 if imported.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
