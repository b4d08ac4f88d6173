"""The platform's dotenv file, ``~/.micro/platform.env``, that the CLI shares with every tool of the platform.

micro v3 needs ``~/.micro`` to be a directory (``util/user/user.go`` in micro v3.19.0 runs
``os.MkdirAll(~/.micro)`` and exits fatally when it fails); its own configuration is
``~/.micro/config.json`` (:mod:`cli.platform_cli.micro_config`). Where the platform's file is:

1. ``PLATFORM_CONFIG``, when set, names the file explicitly;
2. otherwise ``$HOME/.micro/platform.env`` (``HOME`` from the environment);
3. a ``$HOME/.micro`` *file* (what earlier versions of this CLI wrote) is still read, and the first
   write moves it into the directory form (:func:`ensure_micro_directory`), nothing lost.

Reading: the file's values, overridden by the environment variables of the same names (a non-empty
environment variable wins). Writing: only the keys the CLI owns (:data:`OWNED_KEYS`) are changed;
every other line (other keys, comments, blank lines) is kept as it was. The new content goes to a
temporary file in the same directory, created with mode 0600, is flushed and fsynced, then renamed
over the old file with :func:`os.replace`, so a reader sees either the old or the new file, whole.
A ``~/.micro`` directory the CLI creates has mode 0700.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cli.platform_cli.errors import UsageError

MICRO_PROXY_ADDRESS = "MICRO_PROXY_ADDRESS"
MICRO_AUTH_TOKEN = "MICRO_AUTH_TOKEN"  # noqa: S105 (a key name)
MICRO_NAMESPACE = "MICRO_NAMESPACE"
PLATFORM_API_URL = "PLATFORM_API_URL"
PLATFORM_TOKEN = "PLATFORM_TOKEN"  # noqa: S105 (a key name)

OWNED_KEYS = (MICRO_PROXY_ADDRESS, MICRO_AUTH_TOKEN, MICRO_NAMESPACE, PLATFORM_API_URL, PLATFORM_TOKEN)
SECRET_KEYS = frozenset({MICRO_AUTH_TOKEN, PLATFORM_TOKEN})

DEFAULT_API_URL = "http://127.0.0.1:8000"
FILE_NAME = ".micro"
DIR_FILE_NAME = "platform.env"

_ENTRY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$")
_BARE = re.compile(r"^[A-Za-z0-9_./:@%+,=~-]+$")


@dataclass(frozen=True)
class Location:
    """Where the configuration lives; ``kind`` is ``explicit`` (``PLATFORM_CONFIG``), ``directory``
    (``~/.micro/platform.env``) or ``legacy`` (a ``~/.micro`` file, moved into the directory on write)."""

    path: Path
    kind: str
    home: Path

    def display(self) -> str:
        """The path as shown to the user (``~/...`` under HOME)."""
        return display_path(self.path, self.home)

    @property
    def in_micro_directory(self) -> bool:
        return self.kind == "directory"

    @property
    def legacy(self) -> bool:
        return self.kind == "legacy"


def display_path(path: Path, home: Path) -> str:
    """``path`` as shown to the user (``~/...`` under ``home``)."""
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def home_dir(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def locate(environ: Mapping[str, str]) -> Location:
    """Where the configuration file is (see the module docstring)."""
    home = home_dir(environ)
    explicit = environ.get("PLATFORM_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_dir():
            raise UsageError(f"PLATFORM_CONFIG names a directory, not a file: {path}", "invalid_config")
        return Location(path, "explicit", home)
    micro = home / FILE_NAME
    if os.path.lexists(micro) and not micro.is_dir():
        return Location(micro, "legacy", home)
    return Location(micro / DIR_FILE_NAME, "directory", home)


def ensure_micro_directory(home: Path) -> str | None:
    """Make ``~/.micro`` a directory, as micro v3 needs it; returns what was done, for the user, or ``None``.

    A missing ``~/.micro`` is created with mode 0700. A ``~/.micro`` file (or a symlink to one) left by
    an earlier version of this CLI is moved into the directory, byte for byte, as ``platform.env``; a file
    holding a JSON object is micro's own pre-v3 configuration and becomes ``config.json``, as micro's
    ``util/config/config.go`` (``moveConfig``) moves it. The directory is built beside ``~/.micro`` and
    renamed into place; the file is put back if that fails. A symlink's target is left where it is."""
    micro = home / FILE_NAME
    if micro.is_dir():
        return None
    if not os.path.lexists(micro):
        try:
            micro.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            return None  # created meanwhile (by micro itself, or another platform command)
        os.chmod(micro, 0o700)
        return None
    try:
        data = micro.read_bytes()
    except FileNotFoundError:
        data = b""  # a dangling symlink
    except OSError as exc:
        raise UsageError(f"cannot read {micro}: {exc.strerror or exc}", "invalid_config") from exc
    name = "config.json" if _is_json_object(data) else DIR_FILE_NAME
    staging = Path(tempfile.mkdtemp(prefix=f"{FILE_NAME}.", suffix=".new", dir=home))  # mode 0700
    backup = staging.with_suffix(".old")
    try:
        write_atomic(staging / name, data)
        os.rename(micro, backup)
        try:
            os.rename(staging, micro)
        except OSError:
            os.rename(backup, micro)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.unlink(backup)
    return f"moved the ~/.micro file into ~/.micro/{name} (micro v3 needs ~/.micro to be a directory)"


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


# -- dotenv parsing and rendering ---------------------------------------------------------------------


def _closing_quote(text: str, quote: str) -> int:
    """Index of the unescaped closing ``quote`` in ``text`` (which starts after the opening one), or -1."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote == '"':
            i += 2
            continue
        if ch == quote:
            return i
        i += 1
    return -1


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_value(raw: str) -> str:
    """The value of the text after ``KEY=``: double quotes (with escapes), single quotes (literal), or bare
    (an inline comment after whitespace and ``#`` removed)."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = _closing_quote(raw[1:], quote)
        if end >= 0:
            inner = raw[1 : 1 + end]
            return _unescape(inner) if quote == '"' else inner
        return raw  # unterminated: keep the text as it is
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def quote_value(value: str) -> str:
    """``value`` as dotenv text: bare when safe, else single quotes, else double quotes with escapes."""
    if value == "":
        return ""
    if _BARE.match(value):
        return value
    if "'" not in value and "\n" not in value and "\r" not in value:
        return f"'{value}'"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


@dataclass
class _Line:
    text: str  # the line(s) exactly as read, without the final newline
    key: str | None = None
    value: str | None = None


@dataclass
class DotEnv:
    """A dotenv document that keeps every line it does not change."""

    lines: list[_Line] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> DotEnv:
        physical = text.splitlines()
        lines: list[_Line] = []
        i = 0
        while i < len(physical):
            line = physical[i]
            i += 1
            match = _ENTRY.match(line)
            if not match:
                lines.append(_Line(line))
                continue
            key, rest = match.group(1), match.group(2)
            stripped = rest.strip()
            if stripped[:1] in ("'", '"') and _closing_quote(stripped[1:], stripped[0]) < 0:
                # A quoted value that spans lines: take lines until the closing quote.
                block = [line]
                joined = stripped
                while i < len(physical):
                    block.append(physical[i])
                    joined += "\n" + physical[i]
                    i += 1
                    if _closing_quote(joined[1:], joined[0]) >= 0:
                        break
                lines.append(_Line("\n".join(block), key, parse_value(joined)))
                continue
            lines.append(_Line(line, key, parse_value(rest)))
        return cls(lines)

    def values(self) -> dict[str, str]:
        """Every key's value (the last assignment wins, as in a shell)."""
        out: dict[str, str] = {}
        for line in self.lines:
            if line.key is not None and line.value is not None:
                out[line.key] = line.value
        return out

    def set(self, key: str, value: str | None) -> None:
        """Set ``key`` (in place of its first assignment, dropping any other), or remove it when ``None``."""
        new_text = None if value is None else f"{key}={quote_value(value)}"
        kept: list[_Line] = []
        placed = False
        for line in self.lines:
            if line.key != key:
                kept.append(line)
            elif new_text is not None and not placed:
                kept.append(_Line(new_text, key, value))
                placed = True
        if new_text is not None and not placed:
            kept.append(_Line(new_text, key, value))
        self.lines = kept

    def render(self) -> str:
        return "".join(line.text + "\n" for line in self.lines)


# -- reading and writing the file ---------------------------------------------------------------------


def read_document(path: Path) -> DotEnv:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")  # bytes that are not UTF-8 kept as they are
    except FileNotFoundError:
        return DotEnv()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", "invalid_config") from exc
    return DotEnv.parse(text)


def write_atomic(path: Path, text: str | bytes, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same directory (mode ``mode``),
    flushed and fsynced, then :func:`os.replace` over ``path``; the directory is fsynced after."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@dataclass
class Config:
    """The configuration as the CLI sees it: the file's values under the environment's."""

    location: Location
    file_values: dict[str, str]
    environ: Mapping[str, str]
    moved: str | None = None  # what the last write did to a legacy ~/.micro file, for the user

    @classmethod
    def load(cls, environ: Mapping[str, str]) -> Config:
        location = locate(environ)
        return cls(location, read_document(location.path).values(), environ)

    def get(self, key: str) -> str | None:
        from_env = self.environ.get(key)
        if from_env:
            return from_env
        return self.file_values.get(key) or None

    def source(self, key: str) -> str | None:
        """``environment``, ``file`` or ``None``: where :meth:`get` finds ``key``."""
        if self.environ.get(key):
            return "environment"
        if self.file_values.get(key):
            return "file"
        return None

    @property
    def api_url(self) -> str:
        return normalise_api_url(self.get(PLATFORM_API_URL) or DEFAULT_API_URL)

    @property
    def token(self) -> str | None:
        return self.get(PLATFORM_TOKEN)

    @property
    def namespace(self) -> str | None:
        return self.get(MICRO_NAMESPACE)

    def overridden(self, keys: Iterable[str]) -> list[str]:
        """Those of ``keys`` the environment overrides (so a written value will not be the one used)."""
        return [key for key in keys if self.environ.get(key)]

    def update(self, changes: Mapping[str, str | None]) -> Path:
        """Write ``changes`` (``None`` removes a key) to the file, keeping everything else; returns the path."""
        unknown = set(changes) - set(OWNED_KEYS)
        if unknown:
            raise ValueError(f"the CLI does not own {sorted(unknown)}")
        self.moved = None
        if self.location.kind != "explicit":
            self.moved = ensure_micro_directory(self.location.home)
            self.location = locate(self.environ)
        document = read_document(self.location.path)
        for key in OWNED_KEYS:
            if key in changes:
                document.set(key, changes[key])
        write_atomic(self.location.path, document.render())
        self.file_values = document.values()
        return self.location.path


def normalise_api_url(url: str) -> str:
    """``url`` without trailing slashes, after checking it is an http(s) address."""
    url = url.strip()
    if not re.match(r"^https?://[^/\s]+", url):
        raise UsageError(f"not an http(s) address: {url!r} (expected e.g. https://api.example.com)", "invalid_url")
    return url.rstrip("/")
