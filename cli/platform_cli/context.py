"""What a command runs with: the environment, the streams, the API client factory, the clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from cli.platform_cli.client import ApiClient, ClientFactory
from cli.platform_cli.config import SECRET_KEYS, Config
from cli.platform_cli.errors import NotLoggedIn, UsageError
from cli.platform_cli.output import clean, to_json


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    environ: Mapping[str, str]
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    client_factory: ClientFactory
    sleep: Callable[[float], None]
    now: Callable[[], datetime] = _utcnow
    output: str = "table"
    max_polls: int | None = None  # tests: how many polls a follow loop (``logs --follow``) makes at most
    _config: Config | None = field(default=None, repr=False)

    # -- configuration and API -----------------------------------------------------------------------

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config.load(self.environ)
        return self._config

    def api(self, *, base_url: str | None = None, token: str | None = None, auth: bool = True) -> ApiClient:
        """A client for the configured API; with ``auth``, authenticated with the configured token (or
        ``token``), and :class:`NotLoggedIn` when there is none."""
        url = base_url or self.config.api_url
        if not auth:
            return self.client_factory(url, None)
        token = token or self.config.token
        if not token:
            raise NotLoggedIn()
        return self.client_factory(url, token)

    def save(self, changes: Mapping[str, str | None]) -> None:
        """Write ``changes`` to the configuration file, saying where, and which written keys the
        environment overrides."""
        config = self.config
        config.update(changes)
        location = config.location
        if config.moved:
            self.note(config.moved)
        written = [k for k, v in changes.items() if v is not None]
        self.note(f"wrote {', '.join(written) or 'no keys'} to {location.display()} (mode 0600)")
        for key in config.overridden(k for k in changes):
            self.note(f"warning: {key} is set in the environment, which overrides the file")

    # -- input and output ----------------------------------------------------------------------------

    @property
    def json(self) -> bool:
        return self.output == "json"

    def note(self, message: str) -> None:
        """A message for the person at the terminal (stderr, so stdout stays the command's result)."""
        self.stderr.write(message + "\n")
        self.stderr.flush()

    def emit(self, data: Any, text: str) -> None:
        """The command's result: ``data`` as JSON with ``--output json``, else ``text``."""
        self.stdout.write(to_json(data) if self.json else text)
        self.stdout.flush()

    def interactive(self, yes: bool = False) -> bool:
        """Whether prompts may be shown: not with ``--yes``, and only when stdin is a terminal."""
        if yes:
            return False
        isatty = getattr(self.stdin, "isatty", None)
        return bool(isatty and isatty())

    def ask(self, question: str, *, flag: str, default: str | None = None) -> str:
        """Ask on the terminal (the caller checked :meth:`interactive`); an empty answer takes ``default``."""
        suffix = f" [{default}]" if default else ""
        while True:
            self.stderr.write(f"{question}{suffix}: ")
            self.stderr.flush()
            line = self.stdin.readline()
            if not line:
                raise UsageError(f"no answer to {question!r} (end of input): pass {flag}", "missing_answer")
            answer = line.strip()
            if answer:
                return answer
            if default:
                return default

    def confirm(self, question: str, *, default: bool) -> bool:
        hint = "Y/n" if default else "y/N"
        while True:
            self.stderr.write(f"{question} [{hint}]: ")
            self.stderr.flush()
            line = self.stdin.readline()
            if not line:
                return default
            answer = line.strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False


def show_secret_key(key: str, value: str | None) -> str:
    """A configuration value for display: secrets masked."""
    if value is None:
        return "-"
    if key in SECRET_KEYS:
        return "(set, hidden)"
    return clean(value)
