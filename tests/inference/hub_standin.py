"""A local stand-in for the Hugging Face Hub API, enough for ``huggingface_hub`` to create a model
repo, commit files to it (regular and LFS uploads, deletions) and download them again.

It runs on 127.0.0.1 in a thread; clients reach it with ``HF_ENDPOINT=<server.url>`` (and
``HF_HUB_DISABLE_XET=1``: uploads then use the LFS protocol, which this server speaks, instead of
Xet storage). It keeps every request, so tests can check exactly what was uploaded and
downloaded. It checks what a test cannot see otherwise: the ``Authorization`` header, that an
LFS object's sha256 matches its content, and that a commit only references uploaded objects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".onnx", ".bin")
REPO = r"(?P<repo>[^/]+/[^/]+)"


@dataclass
class StandinRepo:
    """A model repo: its visibility, branches (name -> commit) and commits (sha -> files)."""

    private: bool | None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def files(self, revision: str) -> dict[str, bytes]:
        """Files at a branch or commit."""
        return self.commits[self.branches.get(revision, revision)]


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    authorization: str | None


def _git_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubStandin:
    """The server's state and its HTTP handler; use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, StandinRepo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubStandin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ----------------------------------------------------------------- what tests look at
    def downloaded(self) -> list[str]:
        """Paths of files whose content was sent (GET .../resolve/...)."""
        out = []
        for r in self.requests:
            m = re.match(rf"^/{REPO}/resolve/[^/]+/(?P<file>.+)$", r.path)
            if r.method == "GET" and m:
                out.append(unquote(m.group("file")))
        return out

    def commit(self, repo_id: str, files: dict[str, bytes], message: str = "", branch: str = "main") -> str:
        """Commit ``files`` (replacing the branch's tree) directly, as another uploader would."""
        repo = self.repos.setdefault(repo_id, StandinRepo(private=None))
        return self._store_commit(repo, branch, dict(files), message)

    def _store_commit(self, repo: StandinRepo, branch: str, files: dict[str, bytes], message: str) -> str:
        parent = repo.branches.get(branch, "")
        digest = hashlib.sha1(parent.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        digest.update(message.encode())
        sha = digest.hexdigest()
        repo.commits[sha] = files
        repo.messages[sha] = message
        repo.branches[branch] = sha
        return sha

    # ----------------------------------------------------------------- HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, payload: Any = None, raw: bytes | None = None,
                      headers: dict[str, str] | None = None, head: bool = False) -> None:
                body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None
                                 else "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if status >= 400:
                    self.send_header("X-Error-Message", (payload or {}).get("error", "error"))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                path, query = url.path, parse_qs(url.query)
                with hub.lock:
                    hub.requests.append(Request(method, path, self.headers.get("Authorization")))
                body = self._body() if method in {"POST", "PUT"} else b""
                try:
                    hub_response = hub._dispatch(method, path, query, body, self.headers)
                except KeyError as exc:
                    hub_response = (404, {"error": f"not found: {exc}"}, None, {"X-Error-Code": "RepoNotFound"})
                status, payload, raw, headers = hub_response
                self._send(status, payload, raw, headers, head=method == "HEAD")

            def do_GET(self) -> None:
                self._route("GET")

            def do_HEAD(self) -> None:
                self._route("HEAD")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

        return Handler

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
                  headers: Any) -> tuple[int, Any, bytes | None, dict[str, str]]:
        def ok(payload: Any = None, raw: bytes | None = None, hdrs: dict[str, str] | None = None) -> Any:
            return 200, payload, raw, hdrs or {}

        if method == "POST" and path == "/api/repos/create":
            data = json.loads(body)
            repo_id = f"{data['organization']}/{data['name']}"
            if repo_id in self.repos:
                return 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}, None, {}
            visibility = data.get("visibility")
            repo = self.repos[repo_id] = StandinRepo(private=None if visibility is None else visibility == "private")
            self._store_commit(repo, "main", {".gitattributes": b"*.safetensors filter=lfs\n*.onnx filter=lfs\n"},
                               "initial commit")
            return ok({"url": f"{self.url}/{repo_id}"})
        if method == "POST" and path == "/api/validate-yaml":
            errors = self._card_errors(json.loads(body)["content"])
            return (400 if errors else 200), {"errors": [{"message": e} for e in errors], "warnings": []}, None, {}
        m = re.match(rf"^/api/models/{REPO}/branch/(?P<branch>.+)$", path)
        if method == "POST" and m:
            repo = self.repos[m.group("repo")]
            branch = unquote(m.group("branch"))
            if branch in repo.branches:
                return 409, {"error": "Reference already exists"}, None, {}
            repo.branches[branch] = repo.branches["main"]
            return ok({})
        m = re.match(rf"^/api/models/{REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?$", path)
        if method == "GET" and m:
            repo = self.repos[m.group("repo")]
            files = repo.files(unquote(m.group("rev")))
            return ok([self._tree_entry(p, c) for p, c in sorted(files.items())])
        m = re.match(rf"^/api/models/{REPO}(?:/revision/(?P<rev>.+))?$", path)
        if method == "GET" and m:
            repo_id = m.group("repo")
            repo = self.repos[repo_id]
            rev = unquote(m.group("rev") or "main")
            sha = repo.branches.get(rev, rev)
            return ok({"id": repo_id, "modelId": repo_id, "sha": sha, "private": bool(repo.private),
                       "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]})
        m = re.match(rf"^/api/models/{REPO}/preupload/(?P<rev>.+)$", path)
        if method == "POST" and m:
            repo = self.repos[m.group("repo")]
            current = repo.files(unquote(m.group("rev")))
            out = []
            for f in json.loads(body)["files"]:
                lfs = f["path"].endswith(LFS_SUFFIXES)
                entry: dict[str, Any] = {"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                                         "shouldIgnore": False}
                if f["path"] in current:
                    entry["oid"] = self._oid(current[f["path"]], lfs)
                out.append(entry)
            return ok({"files": out, "commitOid": repo.branches.get(unquote(m.group("rev")))})
        m = re.match(rf"^/{REPO}\.git/info/lfs/objects/batch$", path)
        if method == "POST" and m:
            data = json.loads(body)
            objects = []
            for obj in data["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in self.lfs:
                    entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"}}
                objects.append(entry)
            return ok({"transfer": "basic", "objects": objects})
        m = re.match(r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$", path)
        if method == "PUT" and m:
            if hashlib.sha256(body).hexdigest() != m.group("oid"):
                return 400, {"error": "sha256 of the uploaded content does not match the oid"}, None, {}
            self.lfs[m.group("oid")] = body
            return ok({})
        m = re.match(rf"^/api/models/{REPO}/commit/(?P<rev>.+)$", path)
        if method == "POST" and m:
            return self._commit_ndjson(m.group("repo"), unquote(m.group("rev")), body)
        m = re.match(rf"^/{REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", path)
        if method in {"GET", "HEAD"} and m:
            repo = self.repos[m.group("repo")]
            rev = unquote(m.group("rev"))
            sha = repo.branches.get(rev, rev)
            name = unquote(m.group("file"))
            if name not in repo.commits[sha]:
                return 404, {"error": "Entry not found"}, None, {"X-Error-Code": "EntryNotFound"}
            content = repo.commits[sha][name]
            lfs = name.endswith(LFS_SUFFIXES)
            hdrs = {"X-Repo-Commit": sha, "ETag": f'"{self._oid(content, lfs)}"'}
            if lfs:
                hdrs["X-Linked-Etag"] = f'"{self._oid(content, lfs)}"'
                hdrs["X-Linked-Size"] = str(len(content))
            return ok(raw=content, hdrs=hdrs)
        return 404, {"error": f"the stand-in does not implement {method} {path}"}, None, {}

    @staticmethod
    def _card_errors(card: str) -> list[str]:
        """The Hub's model-card checks that matter here: YAML front matter that parses, and a
        ``base_model`` that is a model id (the Hub also checks that the model exists)."""
        import yaml

        m = re.match(r"\A---\n(.*?\n)---\n", card, re.S)
        if m is None:
            return []
        try:
            meta = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError as exc:
            return [f"invalid YAML: {exc}"]
        base = meta.get("base_model")
        bases = base if isinstance(base, list) else [] if base is None else [base]
        return [f'"base_model" with value "{b}" is not a valid model id' for b in bases
                if not (isinstance(b, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", b))]

    @staticmethod
    def _oid(content: bytes, lfs: bool) -> str:
        return hashlib.sha256(content).hexdigest() if lfs else _git_oid(content)

    def _tree_entry(self, path: str, content: bytes) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": _git_oid(content), "size": len(content), "path": path}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
        return entry

    def _commit_ndjson(self, repo_id: str, revision: str, body: bytes) -> Any:
        repo = self.repos[repo_id]
        files = dict(repo.files(revision))
        message = ""
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.lfs:
                    return 400, {"error": f"LFS object {value['oid']} of {value['path']} was never uploaded"}, None, {}
                files[value["path"]] = self.lfs[value["oid"]]
            elif key == "deletedFile":
                if value["path"] not in files:
                    return 404, {"error": "A file with this name doesn't exist"}, None, {}
                del files[value["path"]]
            else:
                return 400, {"error": f"the stand-in does not implement commit item {key}"}, None, {}
        sha = self._store_commit(repo, revision, files, message)
        return 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                     "pullRequestUrl": None}, None, {}


_EXPORTED: dict[Path, Path] = {}


def exported_tiny_model(trained_model_dir: Path, tmp_path_factory: Any) -> Path:
    """A copy of the tiny trained model with a real ONNX export (fp32 and int8), made once per
    session and shared by the Hub tests (read-only: copy it before changing it)."""
    if trained_model_dir not in _EXPORTED:
        import shutil

        from conftest import MINI_DATA

        from inference.export import main as export

        target = tmp_path_factory.mktemp("hub-exported") / "model"
        shutil.copytree(trained_model_dir, target)
        code = export(["--model-dir", str(target), "--quantize", "int8", "--check-data",
                       str(MINI_DATA / "train.jsonl"), "--min-agreement", "0.9", "--min-label-set-agreement", "0.5"])
        assert code == 0, "the tiny model's ONNX export was refused"
        _EXPORTED[trained_model_dir] = target
    return _EXPORTED[trained_model_dir]


def model_files(model_dir: Path) -> dict[str, bytes]:
    """Every file of a model directory by its relative path (what a publisher would commit)."""
    return {p.relative_to(model_dir).as_posix(): p.read_bytes()
            for p in sorted(model_dir.rglob("*")) if p.is_file()}
