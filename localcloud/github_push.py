"""Act as GitHub: commit to a repository of a running local cloud's GitHub stand-in and send the ``push``
webhook, to watch push-to-deploy work offline.

The local cloud's GitHub stand-in (``http://127.0.0.1:8010`` by default, the port ``PLATFORM_GITHUB_PORT``
as ``make run`` takes it) hosts real git repositories
(bare repositories whose ``clone_url`` is a ``file://`` URL) and sends the GitHub App's signed webhooks to
the platform. This command asks it, over HTTP, to commit files and push:

    # the seeded repository acme/hello (the example service, examples/hello): change a file
    python -m localcloud.github_push --github http://127.0.0.1:8010 acme/hello \\
        --file server.py=@examples/hello/server.py --message "Deploy the example"

    # inline content, another branch (a new branch starts at the default branch's head)
    python -m localcloud.github_push acme/hello --file NOTES.md="hello" --branch feature --message "Notes"

    # delete a file; rewrite the branch's head commit (a forced push)
    python -m localcloud.github_push acme/hello --delete NOTES.md --force --message "Drop the notes"

    # a new repository from a directory, then push to it
    python -m localcloud.github_push acme/svc --create-from examples/hello --message "First change" \\
        --file README.md="# svc"

``--file PATH=CONTENT`` sets a file (``PATH=@LOCAL_FILE`` reads it from disk); ``--delete PATH`` removes one.
It prints the new commit sha (and, on stderr, the webhook delivery id: ``GET /app/hook/deliveries`` with the
app's JWT shows whether the platform accepted it). ``--author`` picks the seeded user who pushes (default
``ada``). The stand-in-only routes it uses are ``POST /_stand-in/repos`` and
``POST /_stand-in/repos/{owner}/{repo}/commits``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

DEFAULT_GITHUB = "http://127.0.0.1:8010"
TIMEOUT = 60.0

__all__ = ["create_repo", "main", "push"]


class PushError(RuntimeError):
    pass


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = requests.post(url, json=body, timeout=TIMEOUT)
    except requests.RequestException as error:
        raise PushError(f"the GitHub stand-in does not answer at {url}: {error}") from error
    try:
        data = response.json()
    except ValueError:
        data = {"message": response.text}
    if response.status_code >= 300:
        raise PushError(f"{response.status_code}: {data.get('message') if isinstance(data, dict) else data}")
    if not isinstance(data, dict):
        raise PushError(f"unexpected answer: {data!r}")
    return data


def push(
    github: str,
    repository: str,
    files: dict[str, str | None],
    message: str,
    *,
    branch: str | None = None,
    author: str = "ada",
    force: bool = False,
) -> dict[str, Any]:
    """Commits and pushes through the stand-in; returns ``{sha, before, branch, delivery}``."""
    owner, _, name = repository.partition("/")
    if not owner or not name:
        raise PushError(f"not owner/name: {repository!r}")
    url = f"{github.rstrip('/')}/_stand-in/repos/{quote(owner)}/{quote(name)}/commits"
    body: dict[str, Any] = {"files": files, "message": message, "author": author, "force": force}
    if branch:
        body["branch"] = branch
    return _post(url, body)


def create_repo(github: str, repository: str, from_dir: Path | None = None, author: str = "ada") -> dict[str, Any]:
    owner, _, name = repository.partition("/")
    body: dict[str, Any] = {"owner": owner, "name": name, "author": author}
    if from_dir is not None:
        body["from_dir"] = str(from_dir.resolve())
    return _post(f"{github.rstrip('/')}/_stand-in/repos", body)


def _files(pairs: Sequence[str], deletions: Sequence[str]) -> dict[str, str | None]:
    files: dict[str, str | None] = {}
    for pair in pairs:
        path, sep, content = pair.partition("=")
        if not sep or not path:
            raise PushError(f"--file takes PATH=CONTENT or PATH=@LOCAL_FILE, not {pair!r}")
        if content.startswith("@"):
            local = Path(content[1:]).expanduser()
            try:
                content = local.read_text(encoding="utf-8")
            except OSError as error:
                raise PushError(f"--file {path}: cannot read {local}: {error}") from error
        files[path] = content
    for path in deletions:
        files[path] = None
    return files


def default_github(environ: Mapping[str, str]) -> str:
    """The stand-in's address: ``PLATFORM_GITHUB_URL``, else 127.0.0.1 on ``PLATFORM_GITHUB_PORT`` (the
    port ``python -m localcloud`` starts it on, localcloud/cloud.py), else the default port."""
    if environ.get("PLATFORM_GITHUB_URL"):
        return environ["PLATFORM_GITHUB_URL"]
    port = environ.get("PLATFORM_GITHUB_PORT")
    return f"http://127.0.0.1:{port}" if port else DEFAULT_GITHUB


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.github_push",
        description="Commit to a repository of the local GitHub stand-in and send the push webhook.",
    )
    parser.add_argument("repository", help="owner/name, e.g. acme/hello")
    parser.add_argument(
        "--github",
        default=default_github(os.environ),
        help=f"the stand-in's address (default {DEFAULT_GITHUB}: $PLATFORM_GITHUB_URL, else the port "
        "$PLATFORM_GITHUB_PORT as `make run` uses it)",
    )
    parser.add_argument("--file", action="append", default=[], metavar="PATH=CONTENT|@LOCAL_FILE")
    parser.add_argument("--delete", action="append", default=[], metavar="PATH")
    parser.add_argument("--message", "-m", default="Change from localcloud.github_push")
    parser.add_argument("--branch", help="default: the repository's default branch")
    parser.add_argument("--author", default="ada", help="the seeded user who pushes (default ada)")
    parser.add_argument("--force", action="store_true", help="rewrite the branch's head commit (forced push)")
    parser.add_argument("--create-from", type=Path, metavar="DIR", help="create the repository from DIR first")
    args = parser.parse_args(argv)
    try:
        if args.create_from is not None:
            create_repo(args.github, args.repository, args.create_from, args.author)
        files = _files(args.file, args.delete)
        if not files and args.create_from is not None:
            return 0
        if not files:
            raise PushError("nothing to commit: give --file or --delete")
        answer = push(
            args.github,
            args.repository,
            files,
            args.message,
            branch=args.branch,
            author=args.author,
            force=args.force,
        )
    except PushError as error:
        print(f"github_push: {error}", file=sys.stderr)
        return 1
    print(answer["sha"])
    delivery = answer.get("delivery")
    if delivery:
        print(f"push webhook: delivery {delivery['id']} ({delivery['guid']})", file=sys.stderr)
    else:
        print("push webhook: none sent (no webhook URL, or the app is not installed there)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
