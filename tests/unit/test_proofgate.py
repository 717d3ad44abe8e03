"""lab/proofgate.py: missing proof fails the lab suites (issue 11), and tests/allowed_gaps.yml."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from lab import proofgate
from lab.proofgate import Allowance, find_allowance, load_allow_list, parse_allow_list

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
SECURITY_DOC = REPO / "docs" / "security.md"


# --- the repository's allow-list -----------------------------------------------------------


def test_the_allow_list_parses_and_stays_short() -> None:
    allow = load_allow_list()
    # Every entry is something CI does not prove: growing it needs a look, not a habit.
    assert len(allow) <= 5, sorted(allow)


def test_every_allowed_control_is_a_documented_control() -> None:
    documented = set(re.findall(r"^\| ([A-Z0-9]+-\d+) \|", SECURITY_DOC.read_text("utf-8"), re.M))
    assert documented, "docs/security.md has no table of controls?"
    for section, key in load_allow_list():
        if section == "controls":
            assert key in documented, f"allowed_gaps.yml: {key} is not in docs/security.md"


def test_every_allowed_test_exists() -> None:
    for section, key in load_allow_list():
        if section != "tests":
            continue
        path, _, name = key.partition("::")
        assert path.startswith(("tests/lab/", "tests/infra/")), key
        source = REPO / path
        assert source.is_file(), f"allowed_gaps.yml: no {path}"
        assert re.search(rf"^def {re.escape(name)}\(", source.read_text("utf-8"), re.M), (
            f"allowed_gaps.yml: no test {name} in {path}")


# --- parsing and matching ------------------------------------------------------------------


def entry(reason: str = "because", contains: str = "container:") -> dict[str, str]:
    return {"reason": reason, "skip_contains": contains}


@pytest.mark.parametrize(("raw", "message"), [
    ([], "must be a mapping"),
    ({"control": {}}, "unknown section"),
    ({"controls": ["OS-05"]}, "must map an id"),
    ({"controls": {"OS-05": "just a reason"}}, "needs exactly"),
    ({"controls": {"OS-05": {"reason": "r"}}}, "needs exactly"),
    ({"controls": {"OS-05": {**entry(), "extra": "x"}}}, "needs exactly"),
    ({"controls": {"OS-05": entry(reason="  ")}}, "reason: a non-empty text"),
    ({"controls": {"OS-05": entry(contains="")}}, "skip_contains: a non-empty text"),
    ({"tests": {"tests/infra/t.py::test_x[mail1]": entry()}}, "without \\[parameters\\]"),
])
def test_bad_allow_lists_are_refused(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_allow_list(raw)


def test_empty_allow_list_is_fine(tmp_path: Path) -> None:
    assert parse_allow_list(None) == {}
    (tmp_path / "a.yml").write_text("controls: {}\n", encoding="utf-8")
    assert load_allow_list(tmp_path / "a.yml") == {}
    with pytest.raises(ValueError, match="missing"):
        load_allow_list(tmp_path / "none.yml")


ALLOW = parse_allow_list({
    "controls": {"OS-05": entry("kernel is the machine's")},
    "tests": {"tests/infra/t.py::test_log": entry("log is the machine's")},
})


@pytest.mark.parametrize(("nodeid", "control", "message", "expected"), [
    ("tests/infra/h.py::test_sysctl[mail1]", "OS-05", "container: read-only", "OS-05"),
    ("tests/infra/h.py::test_sysctl[mail1]", "OS-05", "sysctl missing", None),  # other cause
    ("tests/infra/h.py::test_sysctl", "OS-06", "container: x", None),
    ("tests/infra/t.py::test_log", "FW-07", "container: journal", "tests/infra/t.py::test_log"),
    ("tests/infra/t.py::test_log[mail2]", None, "container: j", "tests/infra/t.py::test_log"),
    ("tests/infra/t.py::test_count", "FW-07", "container: j", None),
])
def test_find_allowance(nodeid: str, control: str | None, message: str,
                        expected: str | None) -> None:
    got = find_allowance(ALLOW, nodeid, control, message)
    assert (got.key if got else None) == expected
    if got is not None:
        assert isinstance(got, Allowance) and got.reason


# --- the gate in a pytest run --------------------------------------------------------------


CONFTEST = """
    from pathlib import Path

    from lab import proofgate

    ALLOW = {allow!r}

    def pytest_configure(config):
        config.addinivalue_line("markers", "control(id, description): a control")
        gate = proofgate.ProofGate(proofgate.parse_allow_list(ALLOW), required={required},
                                   suites=(Path(__file__).parent,), rootpath=config.rootpath)
        config.pluginmanager.register(gate, proofgate.PLUGIN_NAME)
"""

TESTS = """
    import pytest

    def test_proven():
        pass

    def test_unproven():
        pytest.skip("no way to check it here")

    @pytest.mark.control("OS-05", "settings in effect")
    def test_sysctl():
        pytest.skip("container: read-only /proc/sys")

    @pytest.mark.parametrize("host", [])
    def test_nothing_to_check(host):
        pass
"""


def run_gate(pytester: pytest.Pytester, required: bool, allow: dict) -> pytest.RunResult:
    pytester.makeconftest(textwrap.dedent(CONFTEST.format(allow=allow, required=required)))
    pytester.makepyfile(test_gate=textwrap.dedent(TESTS))
    return pytester.runpytest("-p", "no:cacheprovider")


ALLOW_OS05 = {"controls": {"OS-05": entry("containers share the kernel")}}


def test_required_turns_an_unallowed_skip_into_a_failure(pytester: pytest.Pytester) -> None:
    result = run_gate(pytester, True, ALLOW_OS05)
    # test_unproven fails, the empty parameter set (skipped at setup) errors; OS-05 is allowed
    # and stays skipped.
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*missing proof: test_gate.py::test_unproven skipped: no way to check it here*",
        "MISSING  test_gate.py::test_unproven: no way to check it here",
        "allowed  test_gate.py::test_sysctl (OS-05): container: read-only /proc/sys",
        "*reason (*controls.OS-05): containers share the kernel",
        "MISSING  test_gate.py::test_nothing_to_check*: got empty parameter set*",
        "2 missing proof(s) not on *: the run fails",
    ])


def test_required_with_every_gap_allowed_passes(pytester: pytest.Pytester) -> None:
    allow = {**ALLOW_OS05, "tests": {"test_gate.py::test_unproven": entry("r", "no way"),
                                     "test_gate.py::test_nothing_to_check": entry("r", "empty")}}
    result = run_gate(pytester, True, allow)
    result.assert_outcomes(passed=1, skipped=3)
    assert result.ret == pytest.ExitCode.OK


def test_skip_contains_limits_an_entry_to_its_cause(pytester: pytest.Pytester) -> None:
    allow = {"controls": {"OS-05": entry("r", "something else")}}
    result = run_gate(pytester, True, allow)
    result.assert_outcomes(passed=1, failed=2, errors=1)


def test_without_required_skips_stay_skips_and_are_listed(pytester: pytest.Pytester) -> None:
    result = run_gate(pytester, False, ALLOW_OS05)
    result.assert_outcomes(passed=1, skipped=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["2 missing proof(s) not on *: MAILGOV_LAB_REQUIRED=1 (CI) "
                                 "would fail the run"])


def test_a_module_that_skips_whole_fails_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent(CONFTEST.format(allow={}, required=True)))
    pytester.makepyfile(test_a="def test_ok():\n    pass\n",
                        test_b="import pytest\npytest.importorskip('no_such_module_x')\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["MISSING  test_b.py: could not import 'no_such_module_x'*"])


def test_outside_the_suites_the_gate_does_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(textwrap.dedent(CONFTEST.format(allow={}, required=True)).replace(
        "suites=(Path(__file__).parent,)", "suites=(Path(__file__).parent / 'lab',)"))
    pytester.makepyfile(test_gate=textwrap.dedent(TESTS))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3)
    assert result.ret == pytest.ExitCode.OK


def test_register_once(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    first = proofgate.register(config)
    assert proofgate.register(config) is first
    assert proofgate.gate_of(config) is first
    assert yaml.safe_load(proofgate.ALLOW_LIST.read_text("utf-8"))  # the real file was read


# --- the suites: every test is marked lab -------------------------------------------------


@pytest.mark.parametrize("suite", ["tests/lab", "tests/infra"])
def test_every_test_of_a_lab_suite_is_marked_lab(suite: str) -> None:
    """No test of the lab suites escapes `-m lab` (their conftest.py marks every test, so a
    module without pytestmark is no exception)."""
    env = {k: v for k, v in os.environ.items() if k != "MAILGOV_LAB_REQUIRED"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", "not lab", suite], cwd=REPO, capture_output=True, text=True, timeout=120,
        env=env, check=False)
    assert out.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, out.stdout + out.stderr
    assert re.search(r"\d+ deselected", out.stdout), out.stdout
