"""mailgov comment: one plan comment per part, updated in place by the next pipeline, extra
parts deleted. The platform is a stand-in HTTP server on loopback speaking the few GitLab and
GitHub calls used (their documented paths and verbs); no platform is reachable from here."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mailgov import comment


class Platform:
    def __init__(self) -> None:
        self.comments: dict[int, str] = {1: "an unrelated review comment"}
        self.next_id = 2
        self.calls: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    state = Platform()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: Any = None) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(code)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> dict[str, Any]:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n)) if n else {}

        def _handle(self) -> None:
            state.calls.append((self.command, self.path, dict(self.headers)))
            if self.headers.get("PRIVATE-TOKEN") != "t0k" and \
                    self.headers.get("Authorization") != "Bearer t0k":
                return self._reply(401, {"message": "401 Unauthorized"})
            path = self.path.split("?")[0]
            cid = path.rsplit("/", 1)[-1]
            if self.command == "GET":
                return self._reply(200, [{"id": i, "body": b} for i, b in state.comments.items()])
            if self.command == "POST":
                state.comments[state.next_id] = self._body()["body"]
                state.next_id += 1
                return self._reply(201, {})
            if self.command in ("PUT", "PATCH"):
                state.comments[int(cid)] = self._body()["body"]
                return self._reply(200, {})
            if self.command == "DELETE":
                del state.comments[int(cid)]
                return self._reply(204)
            return self._reply(405)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def parts(folder: Path, *texts: str) -> str:
    folder.mkdir(exist_ok=True)
    for old in folder.glob("plan-*.md"):
        old.unlink()
    for i, text in enumerate(texts, 1):
        (folder / f"plan-{i}.md").write_text(text)
    return str(folder)


def gitlab_env(url: str, token: str = "t0k") -> dict[str, str]:
    return {"CI_API_V4_URL": url, "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7",
            "MAILGOV_COMMENT_TOKEN": token}


def test_gitlab_parts_created_then_updated_then_shrunk(platform: Any, tmp_path: Path) -> None:
    state, url = platform
    env = gitlab_env(url)
    assert comment.run("gitlab", parts(tmp_path / "p", "part one", "part two"), env) == 0
    ours = sorted(b for b in state.comments.values() if b.startswith("<!-- mailgov-plan"))
    assert ours == ["<!-- mailgov-plan part 1 -->\npart one",
                    "<!-- mailgov-plan part 2 -->\npart two"]
    assert all(p.startswith("/projects/42/merge_requests/7/notes") for _, p, _ in state.calls)
    # The next pipeline of the same request: one part, updated in place; part 2 deleted.
    ids = set(state.comments)
    assert comment.run("gitlab", parts(tmp_path / "p", "part one, new"), env) == 0
    assert state.comments == {1: "an unrelated review comment",
                              min(ids - {1}): "<!-- mailgov-plan part 1 -->\npart one, new"}
    assert [c for c, _, _ in state.calls[-3:]] == ["GET", "PUT", "DELETE"]


def test_github_uses_issue_comments_of_the_pull_request(platform: Any, tmp_path: Path) -> None:
    state, url = platform
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 12}}))
    env = {"GITHUB_API_URL": url, "GITHUB_REPOSITORY": "bo/mailgov-data",
           "GITHUB_EVENT_PATH": str(event), "GITHUB_TOKEN": "t0k"}
    assert comment.run("github", parts(tmp_path / "p", "only part"), env) == 0
    assert comment.run("github", parts(tmp_path / "p", "only part v2"), env) == 0
    assert sum(b.startswith("<!-- mailgov-plan") for b in state.comments.values()) == 1
    assert ("PATCH", "/repos/bo/mailgov-data/issues/comments/2") in \
        [(c, p) for c, p, _ in state.calls]


def test_no_token_posts_nothing(platform: Any, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    state, url = platform
    env = gitlab_env(url)
    del env["MAILGOV_COMMENT_TOKEN"]
    assert comment.run("gitlab", parts(tmp_path / "p", "x"), env) == 0
    assert "no token" in capsys.readouterr().err and state.calls == []


def test_refused_token_is_one_clear_line(platform: Any, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, url = platform
    assert comment.run("gitlab", parts(tmp_path / "p", "x"), gitlab_env(url, "wrong")) == 2
    assert capsys.readouterr().err.strip().endswith("HTTP 401 Unauthorized")


def test_not_a_merge_request_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"MAILGOV_COMMENT_TOKEN": "t0k", "CI_API_V4_URL": "http://127.0.0.1:9"}
    assert comment.run("gitlab", parts(tmp_path / "p", "x"), env) == 2
    assert "CI_PROJECT_ID is not set" in capsys.readouterr().err
