"""Post or update the plan comment of a merge request (GitLab) or pull request (GitHub).

    mailgov comment --platform gitlab|github DIR     # DIR: `mailgov plan --comment-parts DIR`

One comment per part, each marked ``<!-- mailgov-plan part N -->``: a new pipeline of the same
request updates those comments in place (and deletes parts a shorter plan no longer has), so a
request carries one current plan, never a trail of old ones. Everything comes from the CI's own
variables; the token from the CI's secret store (masked):

* GitLab: ``CI_API_V4_URL``, ``CI_PROJECT_ID``, ``CI_MERGE_REQUEST_IID``, and
  ``MAILGOV_COMMENT_TOKEN`` (a project access token with the ``api`` scope);
* GitHub: ``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, ``GITHUB_EVENT_PATH`` (the pull request's
  number) and ``GITHUB_TOKEN`` (the workflow's token, ``pull-requests: write``).

Without a token (a fork's pipeline, a local run) nothing is posted and it says so: the parts
stay in the job's artifacts. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mailgov.i18n import _

MARKER = "<!-- mailgov-plan part {n} -->"
MARKER_RE = re.compile(r"^<!-- mailgov-plan part (\d+) -->")


class CommentError(RuntimeError):
    """The platform refused or could not be reached; one line."""


class Api:
    """The few calls on a request's comments: list, create, update, delete."""

    def __init__(self, base: str, headers: Mapping[str, str], list_path: str,
                 item_path: str, update_method: str) -> None:
        self.base, self.headers = base.rstrip("/"), dict(headers)
        self.list_path, self.item_path, self.update_method = list_path, item_path, update_method

    def call(self, method: str, path: str, body: Any = None) -> Any:
        # Imported here: urllib.request (http.client, ssl) was 80 ms of every command's start.
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={**self.headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise CommentError(_("{method} {path}: HTTP {code} {reason}").format(
                method=method, path=path, code=exc.code, reason=exc.reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommentError(f"{method} {path}: {exc}") from None
        return json.loads(raw) if raw.strip() else None

    def comments(self) -> list[dict[str, Any]]:
        return list(self.call("GET", self.list_path + "?per_page=100") or [])

    def create(self, body: str) -> None:
        self.call("POST", self.list_path, {"body": body})

    def update(self, cid: int, body: str) -> None:
        self.call(self.update_method, self.item_path.format(id=cid), {"body": body})

    def delete(self, cid: int) -> None:
        self.call("DELETE", self.item_path.format(id=cid))


def gitlab_api(env: Mapping[str, str]) -> Api | None:
    token = env.get("MAILGOV_COMMENT_TOKEN")
    if not token:
        return None
    try:
        notes = (f"/projects/{env['CI_PROJECT_ID']}/merge_requests/"
                 f"{env['CI_MERGE_REQUEST_IID']}/notes")
        return Api(env["CI_API_V4_URL"], {"PRIVATE-TOKEN": token}, notes, notes + "/{id}", "PUT")
    except KeyError as exc:
        raise CommentError(_("not a merge request pipeline: {variable} is not set").format(
            variable=exc.args[0])) from None


def github_api(env: Mapping[str, str]) -> Api | None:
    token = env.get("GITHUB_TOKEN")
    if not token:
        return None
    try:
        event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
        number = event["pull_request"]["number"]
        repo = env["GITHUB_REPOSITORY"]
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise CommentError(_("not a pull request run: {error}").format(error=exc)) from None
    return Api(env.get("GITHUB_API_URL", "https://api.github.com"),
               {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"},
               f"/repos/{repo}/issues/{number}/comments",
               f"/repos/{repo}/issues/comments/{{id}}", "PATCH")


def post(api: Api, parts: Sequence[str]) -> dict[str, int]:
    """Create or update one comment per part; delete the parts a shorter plan has no more."""
    ours: dict[int, int] = {}
    for c in api.comments():
        m = MARKER_RE.match(str(c.get("body", "")))
        if m:
            ours.setdefault(int(m.group(1)), int(c["id"]))
    done = {"created": 0, "updated": 0, "deleted": 0}
    for n, text in enumerate(parts, 1):
        body = MARKER.format(n=n) + "\n" + text
        if n in ours:
            api.update(ours[n], body)
            done["updated"] += 1
        else:
            api.create(body)
            done["created"] += 1
    for n, cid in sorted(ours.items()):
        if n > len(parts):
            api.delete(cid)
            done["deleted"] += 1
    return done


def run(platform: str, folder: str, env: Mapping[str, str] = os.environ) -> int:
    """Post the parts in ``folder``; the exit code of `mailgov comment`."""
    files = sorted(Path(folder).glob("plan-*.md"),
                   key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    if not files:
        print(_("mailgov comment: no plan-*.md in {folder}").format(folder=folder), file=sys.stderr)
        return 2
    try:
        api = (gitlab_api if platform == "gitlab" else github_api)(env)
        if api is None:
            print(_("mailgov comment: no token in the CI's secrets: not posted (the plan is in "
                    "the job's artifacts)"), file=sys.stderr)
            return 0
        done = post(api, [f.read_text(encoding="utf-8") for f in files])
    except CommentError as exc:
        print(_("mailgov comment: {error}").format(error=exc), file=sys.stderr)
        return 2
    print(_("mailgov comment: {created} created, {updated} updated, {deleted} deleted").format(
        created=done['created'], updated=done['updated'], deleted=done['deleted']), file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "comment", help="post or update the plan comment of a merge/pull request",
        description="Post the parts `mailgov plan --comment-parts DIR` wrote as the request's "
        "plan comment, updating the previous pipeline's in place (pipelines/README.md). "
        "The API address, project and request come from the CI's variables, the token from "
        "its secret store; without a token nothing is posted.")
    p.add_argument("--platform", choices=("gitlab", "github"), required=True)
    p.add_argument("parts", metavar="DIR", help="the folder of plan-1.md, plan-2.md …")
    p.set_defaults(func=lambda a: run(a.platform, a.parts))
