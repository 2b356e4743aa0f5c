"""A small local hub endpoint that records what the real huggingface_hub client sends.

It speaks the routes an upload uses: create-repo, validate-yaml, preupload (answering
``regular`` upload mode and the git oid of files it already holds), commit (NDJSON)
and revision info. ``fail`` makes a route answer an HTTP error, once or always;
``stall`` makes a route accept the request and never answer (until the hub is closed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # path -> committed content
        self.commits: list[list[str]] = []  # paths sent per commit
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.repos: set[str] = set()
        self.fail: dict[str, tuple[int, int]] = {}  # route -> (status, remaining times; -1 always)
        self.fail_commit_after: int | None = None  # commits accepted before failing with 500
        self.stall: set[str] = set()  # routes that never answer
        self.on_route: dict[str, Callable[[], None]] = {}  # run when a route is requested
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _should_fail(self, route: str) -> int | None:
        if (
            route == "commit"
            and self.fail_commit_after is not None
            and len(self.commits) >= self.fail_commit_after
        ):
            return 500
        if route in self.fail:
            status, remaining = self.fail[route]
            if remaining != 0:
                self.fail[route] = (status, remaining - 1)
                return status
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _reply(self, status: int, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self) -> str:
                path = self.path.split("?")[0]
                for name in ("preupload", "commit", "revision"):
                    if f"/{name}/" in path:
                        return name
                if path.endswith("/repos/create"):
                    return "create"
                if path.endswith("/validate-yaml"):
                    return "validate-yaml"
                return "other"

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hub.requests.append((method, self.path, dict(self.headers), body))
                route = self._route()
                if route in hub.on_route:
                    hub.on_route[route]()
                if route in hub.stall:
                    hub._released.wait(timeout=120)
                    return
                status = hub._should_fail(route)
                if status is not None:
                    self._reply(status, {"error": f"fake hub: {route} failed with {status}"})
                    return
                if route == "create":
                    request = json.loads(body)
                    repo_id = f"{request.get('organization') or 'user'}/{request['name']}"
                    url = f"{hub.url}/datasets/{repo_id}"
                    if repo_id in hub.repos:  # the hub's 409 also carries the repo url
                        self._reply(409, {"error": "You already created this repo", "url": url})
                        return
                    hub.repos.add(repo_id)
                    self._reply(200, {"url": url, "name": repo_id})
                elif route == "validate-yaml":
                    self._reply(200, {"errors": [], "warnings": []})
                elif route == "preupload":
                    files = json.loads(body)["files"]
                    answer = []
                    for f in files:
                        held = hub.files.get(f["path"])
                        answer.append(
                            {
                                "path": f["path"],
                                "uploadMode": "regular",
                                "shouldIgnore": False,
                                "oid": git_oid(held) if held is not None else None,
                            }
                        )
                    self._reply(200, {"files": answer})
                elif route == "commit":
                    sent = []
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            value = item["value"]
                            hub.files[value["path"]] = base64.b64decode(value["content"])
                            sent.append(value["path"])
                    hub.commits.append(sent)
                    oid = f"{len(hub.commits):040d}"
                    repo = self.path.split("/api/datasets/")[1].split("/commit/")[0]
                    url = f"{hub.url}/datasets/{repo}/commit/{oid}"
                    self._reply(200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})
                elif route == "revision":
                    self._reply(200, {"id": "x", "sha": f"{len(hub.commits):040d}", "siblings": []})
                else:
                    self._reply(404, {"error": f"fake hub: no route {method} {self.path}"})

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self._handle("POST")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

        return Handler
