"""How much slower is `validate` than just parsing the YAML? Target: at most 1.5x.

Generates a seeded synthetic directory (tools.generate), then times, best of N runs:
  * a bare ``yaml.load(f, Loader=yaml.CLoader)`` of the file (the floor any validator pays),
  * the full ``mailgov.validate.validate`` (strict load, schema, model, meaning checks).
Prints figures; it is a script, not a test (timings depend on the machine).

    .venv/bin/python benchmarks/bench_validate.py [--count 50000] [--seed 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

# The generator is development tooling beside the package (tools/), not in it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailgov.validate import validate
from tools.generate import write


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50_000, help="mailboxes (default 50000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--target", type=float, default=1.5, help="ratio to beat (default 1.5)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mailboxes.yaml"
        write(args.count, args.seed, path)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.count} mailboxes, seed {args.seed}, {size_mb:.1f} MB")

        result = validate(path)
        if not result.ok:  # a benchmark of the error path would measure something else
            print(f"generated file has {len(result.problems)} problems, first: "
                  f"{result.problems[0].format()}", file=sys.stderr)
            return 1

        def bare() -> object:
            with path.open("rb") as f:
                return yaml.load(f, Loader=yaml.CLoader)  # the reference, not our loader

        t_yaml = best_of(args.runs, bare)
        t_validate = best_of(args.runs, lambda: validate(path))

    ratio = t_validate / t_yaml
    print(f"yaml.load (CLoader):  {t_yaml:7.3f} s  (best of {args.runs})")
    print(f"mailgov validate:     {t_validate:7.3f} s  (best of {args.runs})")
    verdict = "OK" if ratio <= args.target else "SLOWER THAN TARGET"
    print(f"ratio:                {ratio:7.2f} x  (target <= {args.target}x: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
