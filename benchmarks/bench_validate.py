"""How fast is the data path, next to the bare parsers? Figures side by side, in one run.

For a generated 50,000-mailbox file and a 200,000-mailbox file (tools.generate, seeded):
  * bare rapidyaml parse (``ryml.parse_in_arena``: the floor of any YAML reading here),
  * bare PyYAML C load (``yaml.load(f, Loader=yaml.CLoader)``: what mailgov used to pay; one
    run only, it takes seconds),
  * ``mailgov validate`` (load, schema, meaning checks),
  * the same with a shared forward list (an anchor, and an alias in 1 of 50 mailboxes): the
    fast path, which reads anchors and aliases where values start,
  * the same with one escape added (``x-e: "\\u00e9"``): the precise path (PyYAML) that
    reads every file the fast path declines (escapes, tabs, merge keys, tags …),
  * ``mailgov address "<name>"`` (propose an address: one load, one check),
  * ``mailgov plan --live-json`` against a saved live state equal to the data (a no-op plan),
  * ``mailgov address`` as the admin waits for it: a new process, start and imports included,
and the peak memory of ``mailgov validate`` (a child process, as an admin runs it). Then a
table of the targets on the 50,000 file with PASS/FAIL:

  validate <= 3x bare rapidyaml parse;   address <= 1.2x validate;   plan <= 3x validate;
  validate peak memory <= 250 MB;        validate on 200k <= 4.5x validate on 50k.

``--hostile`` adds the hostile-input bound: each class of hostile file (about 10 MB or less)
must get a located error within 5 s and 500 MB (a child process each).

It is a script, not a test (timings depend on the machine: best of N runs, in CPU seconds,
which the load of a shared machine changes much less than wall-clock time).

    .venv/bin/python benchmarks/bench_validate.py [--counts 50000 200000] [--runs 3] [--hostile]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

# The generator is development tooling beside the package (tools/), not in it.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailgov import fastload  # noqa: E402
from mailgov.archive import retention_end  # noqa: E402
from mailgov.cli import main as mailgov  # noqa: E402
from mailgov.directory import DISABLED_AT, RETAIN_UNTIL, desired_entries  # noqa: E402
from mailgov.live import save_json  # noqa: E402
from mailgov.plan import normalise_dn  # noqa: E402
from mailgov.validate import validate  # noqa: E402
from tools.generate import write  # noqa: E402

NAME = "Nguyễn Văn An"


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Best CPU time of this process over ``runs`` runs: the machine is shared (other jobs
    make wall-clock figures swing by several times); CPU seconds stay comparable."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def quiet(*argv: str) -> Callable[[], int]:
    """``mailgov ARGV`` in this process, output discarded; must exit 0."""
    def run() -> int:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = mailgov(list(argv))
        if code != 0:
            raise SystemExit(f"mailgov {' '.join(argv)} exited {code}")
        return code
    return run


def save_live(data_path: Path, live_path: Path) -> None:
    """The live state a directory converged from this data holds (a no-op plan)."""
    result = validate(data_path)
    assert result.directory is not None
    d = result.directory
    live = {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(d)}
    for m in d.mailboxes:
        if m.state == "cancelled" and m.cancelled is not None:
            day = date.fromisoformat(m.cancelled.date)
            end = retention_end(m, d.policy)
            assert end is not None
            dn = normalise_dn(f"uid={m.address},ou=people,{d.organization.base_dn}")
            # Retained past today: nothing is due for archiving (a true no-op plan).
            live[dn].update({DISABLED_AT: (f"{day:%Y%m%d}000000Z",),
                             RETAIN_UNTIL: (f"{max(end, date(2099, 12, 31)):%Y%m%d}000000Z",)})
    save_json(live, live_path, d.organization.base_dn)


def child(code: str, *args: str, timeout: float = 120) -> tuple[float, float, int, str]:
    """(seconds, peak MB, exit code, first output line) of a child Python running ``code``."""
    # Peak memory from VmHWM (this process since exec); ru_maxrss would carry the parent's
    # size over the fork. Seconds are CPU seconds, as in best_of().
    probe = ("import re, sys, time\nt = time.process_time()\n"
             "try:\n    rc = main()\nexcept SystemExit as e:\n    rc = e.code\n"
             "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
             "print('@@', time.process_time() - t, hwm, rc, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code + "\n" + probe, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    line = next(x for x in proc.stderr.splitlines() if x.startswith("@@"))
    _, secs, rss, rc = line.split()
    first = (proc.stdout.splitlines() or proc.stderr.splitlines() or [""])[0]
    return float(secs), int(rss) / 1024, int(rc), first


def new_process(*argv: str) -> float:
    """CPU seconds of ``mailgov ARGV`` run as a new process (must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "mailgov.cli", *argv], cwd=ROOT, check=True,
                   capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


VALIDATE = ("import sys\nfrom mailgov.cli import main as cli\n"
            "def main():\n    return cli(['validate', *sys.argv[1:]])\n")


def measure(count: int, seed: int, runs: int, tmp: Path) -> dict[str, float]:
    path = tmp / f"mailboxes-{count}.yaml"
    write(count, seed, path)
    raw = path.read_bytes()
    print(f"file: {count:,} mailboxes, seed {seed}, {len(raw) / 1e6:.1f} MB", flush=True)
    result = validate(path)
    if not result.ok:  # a benchmark of the error path would measure something else
        print(f"generated file has {len(result.problems)} problems, first: "
              f"{result.problems[0].format()}", file=sys.stderr)
        raise SystemExit(1)
    live = tmp / f"live-{count}.json"
    save_live(path, live)
    # The same file with one escape: what the fast path declines (escapes, tabs, merge
    # keys, tags …) is read by PyYAML, the precise path.
    precise = tmp / f"mailboxes-{count}-escape.yaml"
    precise.write_bytes(raw.replace(b"\nversion: 1\n", b'\nx-e: "\\u00e9"\nversion: 1\n', 1))
    # A forward list shared by an anchor: an alias in one mailbox of 50 without forward_to.
    anchored = tmp / f"mailboxes-{count}-anchored.yaml"
    anchored.write_bytes(_with_shared_forward(raw))
    for variant in (precise, anchored):
        assert validate(variant).ok and variant.read_bytes() != raw
    assert fastload.load(anchored.read_bytes(), anchored.read_text(encoding="utf-8"))
    assert not fastload.load(precise.read_bytes(), precise.read_text(encoding="utf-8"))
    measured: dict[str, Callable[[], object]] = {}
    if fastload._ryml is not None:
        ryml = fastload._ryml
        measured["rapidyaml parse"] = lambda: ryml.parse_in_arena(raw)
        # The floor of any check in Python: the parse turned into Python objects (rapidyaml's
        # JSON read by json.loads), with no check at all.
        measured["parse to Python (floor)"] = lambda: json.loads(fastload._emit_json(raw))
    measured["mailgov validate"] = quiet("validate", str(path))
    measured["validate, anchors and aliases"] = quiet("validate", str(anchored))
    measured["validate, precise path"] = quiet("validate", str(precise))
    measured["mailgov address"] = quiet("address", NAME, "--data", str(path))
    measured["mailgov plan (no-op)"] = quiet("plan", str(path), "--live-json", str(live))
    timed: dict[str, Callable[[], float]] = {
        name: (lambda fn=fn: best_of(1, fn)) for name, fn in measured.items()}
    # What the admin waits for: a new process, the interpreter's start and imports included.
    timed["address, new process"] = lambda: new_process("address", NAME, "--data", str(path))
    # Round-robin, best of N each: the ratios compare figures taken under the same load of a
    # shared machine (measured one after another, a slow minute made address/validate swing
    # from 0.99 to 1.28 on the same tree).
    out = {name: float("inf") for name in timed}
    for _ in range(runs):
        for name, time_it in timed.items():
            out[name] = min(out[name], time_it())
    with path.open("rb") as f:  # the reference, not our loader; one run (seconds)
        out["PyYAML C load"] = best_of(1, lambda: yaml.load(f, Loader=yaml.CLoader))
    _, peak, rc, _ = child(VALIDATE, str(path))
    assert rc == 0
    out["validate peak MB"] = peak
    return out


def _with_shared_forward(raw: bytes) -> bytes:
    """``raw`` with ``x-fw: &fw [tonghop@mard.gov.vn]`` and ``forward_to: *fw`` in one of
    every 50 mailboxes that have no forward_to."""
    records = raw.decode("utf-8").split("\n  - address: ")
    for i in range(1, len(records), 50):
        if "forward_to:" not in records[i]:
            head, sep, tail = records[i].partition("\n    unit: ")
            line_end = tail.index("\n") if "\n" in tail else len(tail)
            records[i] = (head + sep + tail[:line_end] + "\n    forward_to: *fw"
                          + tail[line_end:])
    text = "\n  - address: ".join(records)
    return text.replace("\nmailboxes:\n", "\nx-fw: &fw [tonghop@mard.gov.vn]\nmailboxes:\n",
                        1).encode("utf-8")


# --------------------------------------------------------------------------- hostile

def _hostile_files(tmp: Path) -> dict[str, Path]:
    base = (ROOT / "tests" / "data" / "good" / "minimal.yaml").read_text(encoding="utf-8")
    ten_mb = 10_000_000

    def put(name: str, text: str) -> None:
        (tmp / f"{name}.yaml").write_text(text, encoding="utf-8")
        assert (tmp / f"{name}.yaml").stat().st_size <= ten_mb + 100_000, name

    laughs = "x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10))
    put("alias bomb in a list", base.replace("units:\n", laughs + "units:\n", 1))
    put("alias bomb in a text field", base.replace("units:\n", laughs + "units:\n", 1)
        .replace("name: Lê Thị Hoa", "name: *a9"))
    many = (ten_mb - len(base)) // 12
    put("million repeated list items", base.replace(
        "aliases: [postmaster]", "aliases:\n" + "      - nvq\n" * many))
    # The same behind one anchor (read by the fast path), and behind one escape: the
    # precise path (PyYAML), which reads a million events in Python several times.
    for name, head in (("million items, an anchor", "x-a: &a 1\n"),
                       ("million items, an escape (precise)", 'x-e: "\\u00e9"\n')):
        put(name, head + base.replace("aliases: [postmaster]",
                                      "aliases:\n" + "      - nvq\n" * (many - 2)))
    put("deep flow nesting (5 M levels)",
        base.replace("aliases: [postmaster]", "aliases: " + "[" * 4_900_000 + "]" * 4_900_000))
    put("self-referencing aliases", base.replace("units:\n", "".join(
        f"x-r{i}: &r{i} [x, *r{i}]\n" for i in range(1000)) + "units:\n", 1))
    put("integer of 9 M digits", base.replace(
        "    role: admin\n", "    role: admin\n    quota_mb: " + "7" * 9_900_000 + "\n"))
    put("non-text keys (800 k)", base + "".join(f"{i}: x\n" for i in range(800_000)))
    put("NUL characters (10 MB)", base + "# " + "\x00" * (ten_mb - len(base) - 3) + "\n")
    put("a 10 MB name", base.replace("name: Lê Thị Hoa", "name: " + "Hoa " * 2_400_000))
    put("10 MB of repeated keys", base.replace("units:\n", "x-d:\n" + "".join(
        f"  k{i}: 1\n" for i in range(700_000)) + "  k0: 2\nunits:\n", 1))
    # A problem in every record (a search-and-replace gone wrong): 1,000 are shown, the rest
    # counted; written in full, the shape one took 55 s and the meaning ones 14-23 s.
    small = "  - address: a{i}\n    id: {id}\n    name: A\n    unit: vpb\n"
    for name, record in (("unknown field in 180 k records", small + "    x: 1\n"),
                         ("repeated id in 200 k records", small.replace("{id}", "7")),
                         ("unknown unit in 200 k records", small.replace("vpb", "nowhere"))):
        n = (ten_mb - len(base)) // len(record.format(i=100_000, id=100_000))
        put(name, base + "".join(record.format(i=i, id=i + 10) for i in range(n)))
    return {p.stem: p for p in sorted(tmp.glob("*.yaml"))}


def hostile(tmp: Path) -> bool:
    print("\nHostile input: a located error within 5 s (CPU) and 500 MB (child process each)")
    print(f"{'file':34} {'MB':>5} {'s':>6} {'peak MB':>8} {'exit':>4}  verdict  first line")
    ok = True
    (tmp / "hostile").mkdir()
    for name, path in _hostile_files(tmp / "hostile").items():
        try:
            secs, peak, rc, first = child(VALIDATE, str(path), timeout=60)
        except subprocess.TimeoutExpired:
            secs, peak, rc, first = 60.0, 0.0, -1, "(killed after 60 s)"
        located = rc == 1 and ":0:0:" not in first and first.startswith(str(path))
        verdict = "PASS" if located and secs <= 5 and peak <= 500 else "FAIL"
        ok &= verdict == "PASS"
        shown = first.replace(str(path), "…")[:90]
        print(f"{name:34} {path.stat().st_size / 1e6:5.1f} {secs:6.2f} {peak:8.0f} {rc:>4}  "
              f"{verdict:7}  {shown}", flush=True)
    return ok


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[50_000, 200_000],
                    help="mailboxes per file; the first is the reference (default 50000 200000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--hostile", action="store_true", help="also the hostile-input bounds")
    args = ap.parse_args(argv)

    if not fastload.available():
        print("rapidyaml is not installed: every load takes the precise (PyYAML) path",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        figures = {n: measure(n, args.seed, args.runs, tmp) for n in args.counts}
        names = list(figures[args.counts[0]])
        print(f"\n{'(CPU seconds, best of ' + str(args.runs) + ')':28}"
              + "".join(f"{n:>14,}" for n in args.counts))
        for key in names:
            print(f"{key:28}" + "".join(
                f"{figures[n].get(key, float('nan')):>14.3f}" for n in args.counts))

        ref = figures[args.counts[0]]
        rows: list[tuple[str, float, str, bool]] = []
        v = ref["mailgov validate"]
        if "rapidyaml parse" in ref:
            r = v / ref["rapidyaml parse"]
            rows.append(("validate / rapidyaml parse", r, "<= 3", r <= 3))
        r = ref["mailgov address"] / v
        rows.append(("address / validate", r, "<= 1.2", r <= 1.2))
        r = ref["mailgov plan (no-op)"] / v
        rows.append(("plan (no-op) / validate", r, "<= 3", r <= 3))
        rows.append(("validate peak memory (MB)", ref["validate peak MB"], "<= 250",
                     ref["validate peak MB"] <= 250))
        if len(args.counts) > 1:
            big = args.counts[-1]
            r = figures[big]["mailgov validate"] / v
            rows.append((f"validate {big:,} / {args.counts[0]:,}", r,
                         f"<= {4.5 * big / args.counts[0] / 4:.1f}",
                         r <= 4.5 * big / args.counts[0] / 4))
            if "rapidyaml parse" in ref:  # the parser's own growth, for comparison
                r = figures[big]["rapidyaml parse"] / ref["rapidyaml parse"]
                rows.append((f"(rapidyaml parse {big:,} / {args.counts[0]:,})", r, "info",
                             True))
        if "parse to Python (floor)" in ref:
            r = ref["parse to Python (floor)"] / ref["rapidyaml parse"]
            rows.append(("(floor / rapidyaml parse)", r, "info", True))
        r = ref["PyYAML C load"] / v
        rows.append(("(PyYAML C load / validate)", r, "info", True))
        print(f"\nTargets on the {args.counts[0]:,}-mailbox file")
        print(f"{'target':34} {'figure':>8}  {'goal':>7}  verdict")
        for label, fig, goal, passed in rows:
            print(f"{label:34} {fig:8.2f}  {goal:>7}  "
                  f"{'-' if goal == 'info' else 'PASS' if passed else 'FAIL'}")
        ok = all(p for *_, p in rows)
        if args.hostile:
            ok &= hostile(tmp)
    print(json.dumps({"ok": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
