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
