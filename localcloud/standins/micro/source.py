"""How micro's runtime fetches a service's source (``service/runtime/source/git/git.go``, v3.19.0), with
git hosts that live on this machine.

- ``ParseSource``: ``@latest`` is appended when the source has no ``@``; the part before ``@`` is split on
  ``/``: its first three parts are the repository, the rest the folder (the service's directory). So
  ``github.com/acme/hello`` is the repository ``github.com/acme/hello``, and an https URL is *not* one:
  ``https://github.com/acme/hello`` parses as the repository ``https://github.com`` and the folder
  ``acme/hello``. The manager then sets the ref to ``Service.Version`` (``manager.go`` ``build``).
- ``CheckoutSource`` prepends ``https://`` when the repository has none. A ``https://github.com``
  repository is downloaded as ``{repo}/archive/{ref}.zip`` with ``Authorization: token $GIT_CREDENTIALS``
  (``checkoutGithub``): the status is not checked, so a 404 (an unknown ref, a private repository without
  a credential) ends as ``zip: not a valid zip file``. Any other host is cloned (``checkoutAnyRemote``:
  ``git clone https://{repo} --depth=1 .``, ``git fetch origin {ref} --depth=1``, ``git checkout
  FETCH_HEAD``), failing as ``Git clone failed: ...`` / ``Git fetch failed: ...``. The ref ``latest``
  tries ``latest``, ``master``, ``main`` and ``trunk``.

Offline, a host is a :class:`GitHost` the stand-in is given (the local cloud gives ``github.com``: the
GitHub stand-in's repositories); an unknown host fails as the name lookup would.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CREDENTIALS_KEY = "GIT_CREDENTIALS"  # git.go credentialsKey
DEFAULT_REFS = ("latest", "master", "main", "trunk")  # git.go Checkout


class FetchError(Exception):
    """What ``CheckoutSource`` returned; the manager records ``Error fetching git source: <it>``."""


@dataclass(frozen=True)
class ParsedSource:
    repo: str
    folder: str
    ref: str


def parse_source(source: str) -> ParsedSource:
    """git.go ``ParseSource``."""
    if "@" not in source:
        source += "@latest"
    refs = source.split("@")
    parts = refs[0].split("/")
    top = min(3, len(parts))
    repo = "/".join(parts[:top])
    folder = "/".join(parts[3:]) if len(parts) > 1 else ""
    return ParsedSource(repo, folder, refs[1])


class GitHost(Protocol):
    def export(self, path: str, ref: str, credential: str | None, dest: Path) -> None:
        """Write the files of ``path`` (``owner/name``) at ``ref`` into ``dest``; raise ``FetchError`` with
        the text micro's fetch would give when the host refuses (unknown repository or ref, no access)."""
        ...


def export_bare(bare: Path, ref: str, dest: Path) -> None:
    """The tree of ``ref`` in the bare repository ``bare``, written into ``dest`` (``git archive``)."""
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    resolved = subprocess.run(  # noqa: S603 - a fixed executable, arguments as a list
        ["git", "-C", str(bare), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],  # noqa: S607
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    if resolved.returncode != 0:
        raise FetchError(f"unknown revision {ref}")
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(bare), "archive", "--format=tar", resolved.stdout.decode().strip()],  # noqa: S607
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    if archive.returncode != 0:
        raise FetchError(archive.stderr.decode("utf-8", "replace").strip())
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")


class BareReposHost:
    """A host whose repositories are bare repositories under ``root`` (``root/<owner>/<name>.git``),
    readable by anyone, or only with a credential ``allowed(path, credential)`` accepts."""

    def __init__(self, root: Path, allowed: Callable[[str, str | None], bool] | None = None) -> None:
        self.root = root
        self.allowed = allowed

    def export(self, path: str, ref: str, credential: str | None, dest: Path) -> None:
        bare = self.root / f"{path.lower()}.git"
        if not bare.is_dir() or (self.allowed is not None and not self.allowed(path, credential)):
            raise FetchError("repository not found")
        export_bare(bare, ref, dest)


class ResolvedHost:
    """A host that answers with the bare repository a credential may read, or None (unknown, or no access)."""

    def __init__(self, resolve: Callable[[str, str | None], Path | None]) -> None:
        self.resolve = resolve

    def export(self, path: str, ref: str, credential: str | None, dest: Path) -> None:
        bare = self.resolve(path, credential)
        if bare is None:
            raise FetchError("repository not found")
        export_bare(bare, ref, dest)


def checkout(
    source: ParsedSource, ref: str, secrets: Mapping[str, str], hosts: Mapping[str, GitHost], workdir: Path
) -> Path:
    """git.go ``CheckoutSource``: the directory holding the repository's files at ``ref``."""
    repo = source.repo if "https://" in source.repo else "https://" + source.repo
    credential = secrets.get(CREDENTIALS_KEY) or None
    refs = [ref] if ref != "latest" else list(DEFAULT_REFS)
    error: FetchError | None = None
    for candidate in refs:
        dest = Path(tempfile.mkdtemp(prefix="micro-src-", dir=workdir))
        try:
            _checkout_one(repo, candidate, credential, hosts, dest)
            return dest
        except FetchError as failed:
            error = failed
    assert error is not None
    raise error


def _checkout_one(repo: str, ref: str, credential: str | None, hosts: Mapping[str, GitHost], dest: Path) -> None:
    rest = repo.removeprefix("https://")
    host, _, path = rest.partition("/")
    if repo.startswith("https://github.com"):
        # checkoutGithub: GET {repo}/archive/{ref}.zip; a refusal is a body that is not a zip
        known = hosts.get("github.com")
        if known is None:
            raise FetchError(
                f'Can\'t get zip: Get "{repo}/archive/{ref}.zip": dial tcp: lookup github.com: no such host'
            )
        if not path:
            raise FetchError("zip: not a valid zip file")
        try:
            known.export(path, ref, credential, dest)
        except FetchError:
            raise FetchError("zip: not a valid zip file") from None
        return
    # checkoutAnyRemote: git clone over https (with the credential as URL user information when given)
    known = hosts.get(host)
    remote = f"https://{credential}@{repo}" if credential else f"https://{rest}"
    if known is None:
        raise FetchError(
            f"Git clone failed: Cloning into '.'...\nfatal: unable to access '{_masked(remote, credential)}/': "
            f"Could not resolve host: {host}\n"
        )
    if credential:  # "https://<credential>@https://host/..." is not a URL git can clone
        raise FetchError(f"Git clone failed: fatal: unable to access '{_masked(remote, credential)}/': URL rejected\n")
    try:
        known.export(path, ref, None, dest)
    except FetchError as error:
        if "unknown revision" in str(error):
            raise FetchError(f"Git fetch failed: fatal: couldn't find remote ref {ref}\n") from None
        raise FetchError(
            f"Git clone failed: Cloning into '.'...\nremote: Repository not found.\n"
            f"fatal: repository '{remote}/' not found\n"
        ) from None


def _masked(text: str, credential: str | None) -> str:
    return text.replace(credential, "***") if credential else text
