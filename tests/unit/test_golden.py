"""Byte-identical output: `mailgov validate` on every corpus file prints exactly what main
printed before the fast loader (tests/data/golden/validate.json, made with main's code at
f354d9b), with and without the rapidyaml wheel. The five files of the hostile-input classes
(MG009–MG011, MG108, MG109) are the intended changes; their entries come from this branch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailgov import fastload
from mailgov.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((ROOT / "tests" / "data" / "golden" / "validate.json").read_text("utf-8"))


def test_golden_covers_the_whole_corpus() -> None:
    corpus = {str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "data").glob("*/*.yaml")}
    assert corpus == set(GOLDEN)


@pytest.mark.parametrize("fast", [True, False], ids=["rapidyaml", "pyyaml-only"])
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_validate_output_is_byte_identical(name: str, fast: bool,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the paths in the output are relative, as CI prints them
    if not fast:
        monkeypatch.setattr(fastload, "_ryml", None)
    code = main(["validate", "--today", "2026-11-29", name])
    out, err = capsys.readouterr()
    want = GOLDEN[name]
    assert (out, err, code) == (want["stdout"], want["stderr"], want["exit"])


def _regenerate() -> None:
    """Rewrite the golden file from the current code, after an intended change of output
    (a new field changes an MG102 'allowed here' list …): review `git diff` before committing.
    `.venv/bin/python tests/unit/test_golden.py`"""
    import contextlib
    import io
    import os

    os.chdir(ROOT)
    out = {}
    corpus = (ROOT / "tests" / "data").glob("*/*.yaml")
    for name in sorted(str(p.relative_to(ROOT)) for p in corpus):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["validate", "--today", "2026-11-29", name])
        out[name] = {"stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "exit": code,
                     "from": GOLDEN.get(name, {}).get("from", "regenerated")}
    path = ROOT / "tests" / "data" / "golden" / "validate.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1, sort_keys=True),
                    encoding="utf-8")


if __name__ == "__main__":
    _regenerate()
