"""Missing proof fails the build (issue 11): the lab suites' rule for skipped tests.

With MAILGOV_LAB_REQUIRED=1 (CI, and `make test` once the lab is up) a test under tests/lab or
tests/infra that skips (or xfails, or whose module skips at collection) is a failure, unless
tests/allowed_gaps.yml names it with a reason: a skipped proof must never pass for a real one.
Without it (a developer without a lab) skips stay skips, and the gaps the allow-list does not
cover are listed at the end.

The allow-list (docs/security.md, "Missing proof"):

    controls:                     # a control id of docs/security.md: any of its tests
      OS-05:
        reason: why the proof cannot be had here, and where it is had instead
        skip_contains: "container:"   # the skip's own message must contain this
    tests:                        # a test id, path::name without [parameters]: that test only
      tests/infra/test_x.py::test_y:
        reason: ...
        skip_contains: ...

`skip_contains` keeps an entry to the one cause it was written for: the same test skipping for
another reason is a failure again.

Both suites' conftest.py call `register(config)` from pytest_configure; the plugin is
registered once even when both are loaded. Test plumbing, not product (as lab.labenv).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ALLOW_LIST = REPO / "tests" / "allowed_gaps.yml"
SUITES = (REPO / "tests" / "lab", REPO / "tests" / "infra")
PLUGIN_NAME = "mailgov-proofgate"
SECTIONS = ("controls", "tests")
FIELDS = ("reason", "skip_contains")


@dataclass(frozen=True)
class Allowance:
    section: str  # "controls" or "tests"
    key: str  # the control id or the test id
    reason: str
    skip_contains: str


@dataclass(frozen=True)
class Gap:
    """A test (or a collected module) that proved nothing: skipped, or xfailed."""

    nodeid: str
    control: str | None
    message: str
    allowance: Allowance | None


def load_allow_list(path: Path = ALLOW_LIST) -> dict[tuple[str, str], Allowance]:
    """{(section, key): Allowance}; ValueError with a readable message for a bad file."""
    if not path.is_file():
        raise ValueError(f"{path}: missing (an empty allow-list is `controls: {{}}`)")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return parse_allow_list(raw, str(path))


def parse_allow_list(raw: Any, where: str = "allow-list") -> dict[tuple[str, str], Allowance]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping with {' and/or '.join(SECTIONS)}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown section(s) {unknown}; known: {list(SECTIONS)}")
    out: dict[tuple[str, str], Allowance] = {}
    for section in SECTIONS:
        entries = raw.get(section) or {}
        if not isinstance(entries, Mapping):
            raise ValueError(f"{where}: {section} must map an id to its entry")
        for key, entry in entries.items():
            if section == "tests" and "[" in str(key):
                raise ValueError(f"{where}: {section}.{key}: name the test without [parameters]")
            if not isinstance(entry, Mapping) or sorted(entry) != sorted(FIELDS):
                raise ValueError(f"{where}: {section}.{key}: needs exactly {list(FIELDS)}")
            for f in FIELDS:
                if not isinstance(entry[f], str) or not entry[f].strip():
                    raise ValueError(f"{where}: {section}.{key}.{f}: a non-empty text")
            out[(section, str(key))] = Allowance(section, str(key), " ".join(
                entry["reason"].split()), entry["skip_contains"])
    return out


def skip_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason the test gave for skipping (or for its expected failure)."""
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        return f"xfail: {wasxfail}".rstrip(": ")
    longrepr = report.longrepr
    # A skip's longrepr is (path, line, "Skipped: message").
    msg = str(longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else longrepr)
    return msg.removeprefix("Skipped: ")


def find_allowance(allow: Mapping[tuple[str, str], Allowance], nodeid: str,
                   control: str | None, message: str) -> Allowance | None:
    """The entry that accepts this gap: the test by id (parameters dropped), or its control;
    only when the skip's message contains the entry's skip_contains."""
    candidates = [("tests", nodeid), ("tests", nodeid.split("[", 1)[0])]
    if control:
        candidates.append(("controls", control))
    for key in candidates:
        entry = allow.get(key)
        if entry is not None and entry.skip_contains in message:
            return entry
    return None


def _control_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("control")
    return str(mark.args[0]) if mark is not None and mark.args else None


class ProofGate:
    def __init__(self, allow: Mapping[tuple[str, str], Allowance], required: bool,
                 suites: tuple[Path, ...] = SUITES, allow_list: Path = ALLOW_LIST,
                 rootpath: Path = REPO) -> None:
        self.allow = allow
        self.rootpath = rootpath
        self.required = required
        self.suites = tuple(p.resolve() for p in suites)
        self.allow_list = allow_list
        self.gaps: dict[str, Gap] = {}

    def in_suites(self, path: Path | str) -> bool:
        p = (self.rootpath / path).resolve()  # an absolute path stays itself
        return any(s == p or s in p.parents for s in self.suites)

    @property
    def unallowed(self) -> list[Gap]:
        return [g for g in self.gaps.values() if g.allowance is None]

    def _where(self) -> str:
        try:
            return str(self.allow_list.relative_to(REPO))
        except ValueError:
            return str(self.allow_list)

    # Outermost wrapper: the report is final when the suite's own hooks see it (the controls
    # table reads `mailgov_gap` to show a converted skip as the skip it was).
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if not report.skipped or not self.in_suites(item.path):
            return report
        control = _control_of(item)
        message = skip_message(report)
        gap = Gap(item.nodeid, control, message,
                  find_allowance(self.allow, item.nodeid, control, message))
        self.gaps[item.nodeid] = gap
        report.mailgov_gap = gap  # type: ignore[attr-defined]
        if gap.allowance is None and self.required:
            report.outcome = "failed"
            report.longrepr = (
                f"missing proof: {item.nodeid}"
                + (f" (control {control})" if control else "")
                + f" skipped: {message}\nWith MAILGOV_LAB_REQUIRED=1 a skip is a failure unless "
                f"{self._where()} allows it with a reason.")
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A module that skips as a whole (pytest.skip(allow_module_level=True), importorskip):
        # it has no tests to fail, so the session fails at the end.
        if report.skipped and self.in_suites(report.nodeid.split("::", 1)[0]):
            message = skip_message(report)
            self.gaps[report.nodeid] = Gap(report.nodeid, None, message,
                                           find_allowance(self.allow, report.nodeid, None,
                                                          message))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.required and self.unallowed and session.exitstatus in (
                pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)  # after the suite's own summary (the table of controls)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.gaps:
            return
        tr = terminalreporter
        tr.section("missing proof")
        for gap in self.gaps.values():
            what = gap.nodeid + (f" ({gap.control})" if gap.control else "")
            if gap.allowance is not None:
                tr.write_line(f"allowed  {what}: {gap.message}")
                tr.write_line(f"         reason ({self._where()} {gap.allowance.section}."
                              f"{gap.allowance.key}): {gap.allowance.reason}")
            else:
                tr.write_line(f"MISSING  {what}: {gap.message}", red=True, bold=True)
        n = len(self.unallowed)
        if n:
            verdict = ("the run fails" if self.required
                       else "MAILGOV_LAB_REQUIRED=1 (CI) would fail the run")
            tr.write_line(f"{n} missing proof(s) not on {self._where()}: {verdict}",
                          red=True, bold=True)


def register(config: pytest.Config) -> ProofGate:
    """Register the gate once per session (both suites' conftest.py call this)."""
    existing = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    try:
        allow = load_allow_list()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    gate = ProofGate(allow, os.environ.get("MAILGOV_LAB_REQUIRED") == "1",
                     rootpath=config.rootpath)
    config.pluginmanager.register(gate, PLUGIN_NAME)
    return gate


def gate_of(config: pytest.Config) -> ProofGate | None:
    return config.pluginmanager.get_plugin(PLUGIN_NAME)  # type: ignore[no-any-return]
