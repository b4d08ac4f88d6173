"""The ``~/.micro`` file of the platform CLI: where it is, how it is read, and how it is written (0600,
atomically, keeping what the CLI does not own)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cli.platform_cli.config import Config, DotEnv, locate, parse_value, quote_value, write_atomic
from cli.platform_cli.errors import UsageError


def env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- where ---------------------------------------------------------------------------------------------


def test_the_file_is_platform_env_in_the_micro_directory(tmp_path: Path) -> None:
    location = locate(env(tmp_path))
    assert location.path == tmp_path / ".micro" / "platform.env"
    assert location.kind == "directory"
    assert location.display() == "~/.micro/platform.env"


def test_a_micro_file_of_an_earlier_version_is_read_where_it_is(tmp_path: Path) -> None:
    (tmp_path / ".micro").write_text("MICRO_NAMESPACE=acme-backend\n")
    location = locate(env(tmp_path))
    assert location.path == tmp_path / ".micro"
    assert location.legacy
    assert Config.load(env(tmp_path)).namespace == "acme-backend"
    assert (tmp_path / ".micro").is_file()  # reading moves nothing


def test_a_micro_directory_means_platform_env_inside_it(tmp_path: Path) -> None:
    (tmp_path / ".micro").mkdir()
    location = locate(env(tmp_path))
    assert location.path == tmp_path / ".micro" / "platform.env"
    assert location.in_micro_directory
    assert location.display() == "~/.micro/platform.env"


def test_platform_config_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "conf.env"
    location = locate(env(tmp_path, PLATFORM_CONFIG=str(target)))
    assert location.path == target
    assert location.kind == "explicit"


def test_platform_config_naming_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        locate(env(tmp_path, PLATFORM_CONFIG=str(tmp_path)))


# -- reading -------------------------------------------------------------------------------------------


def test_parsing_handles_comments_export_quotes_and_inline_comments() -> None:
    text = (
        "# a comment\n"
        "\n"
        "export PLATFORM_API_URL=https://api.example.com   # the API\n"
        "PLATFORM_TOKEN='pt_abc#def'\n"
        'MICRO_NAMESPACE="acme \\"backend\\""\n'
        "OTHER=x=y\n"
        "not a line of dotenv\n"
    )
    values = DotEnv.parse(text).values()
    assert values == {
        "PLATFORM_API_URL": "https://api.example.com",
        "PLATFORM_TOKEN": "pt_abc#def",
        "MICRO_NAMESPACE": 'acme "backend"',
        "OTHER": "x=y",
    }


def test_a_quoted_value_may_span_lines_and_is_kept_whole() -> None:
    text = 'CERT="line one\nline two"\nMICRO_NAMESPACE=acme\n'
    document = DotEnv.parse(text)
    assert document.values() == {"CERT": "line one\nline two", "MICRO_NAMESPACE": "acme"}
    document.set("MICRO_NAMESPACE", "other")
    assert document.render() == 'CERT="line one\nline two"\nMICRO_NAMESPACE=other\n'


@pytest.mark.parametrize(
    "value",
    ["plain", "https://proxy.local.example.com:8443/x", "with space", "it's", 'say "hi"', "a#b", "a $b", "l1\nl2", ""],
)
def test_quoting_round_trips(value: str) -> None:
    document = DotEnv()
    document.set("K", value)
    assert DotEnv.parse(document.render()).values()["K"] == value


def test_quote_value_leaves_safe_values_bare_and_quotes_others() -> None:
    assert quote_value("pt_abc-123.x/y:z@w=") == "pt_abc-123.x/y:z@w="
    assert quote_value("a b") == "'a b'"
    assert quote_value("it's") == '"it\'s"'
    assert parse_value("  'literal \\n'  ") == "literal \\n"


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / ".micro").write_text("PLATFORM_API_URL=https://file.example.com\nPLATFORM_TOKEN=from-file\n")
    config = Config.load(env(tmp_path, PLATFORM_TOKEN="from-env", PLATFORM_API_URL=""))
    assert config.token == "from-env"
    assert config.source("PLATFORM_TOKEN") == "environment"
    # An empty environment variable does not override.
    assert config.api_url == "https://file.example.com"
    assert config.source("PLATFORM_API_URL") == "file"
    assert config.overridden(["PLATFORM_TOKEN", "PLATFORM_API_URL"]) == ["PLATFORM_TOKEN"]


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = Config.load(env(tmp_path))
    assert config.api_url == "http://127.0.0.1:8000"
    assert config.token is None
    assert config.namespace is None


# -- writing -------------------------------------------------------------------------------------------


def test_update_writes_mode_0600_and_keeps_what_it_does_not_own(tmp_path: Path) -> None:
    (tmp_path / ".micro").mkdir()
    path = tmp_path / ".micro" / "platform.env"
    path.write_text(
        "# my settings\n"
        "EDITOR_THING=keep me\n"
        "PLATFORM_TOKEN=old\n"
        "\n"
        "# runtime\n"
        "MICRO_NAMESPACE=old-ns\n"
        "PLATFORM_TOKEN=duplicate\n"
    )
    path.chmod(0o644)
    config = Config.load(env(tmp_path))
    config.update({"PLATFORM_TOKEN": "new token", "MICRO_NAMESPACE": None, "PLATFORM_API_URL": "https://a.example"})
    assert mode(path) == 0o600
    assert path.read_text() == (
        "# my settings\n"
        "EDITOR_THING=keep me\n"
        "PLATFORM_TOKEN='new token'\n"
        "\n"
        "# runtime\n"
        "PLATFORM_API_URL=https://a.example\n"
    )
    assert Config.load(env(tmp_path)).file_values == {
        "EDITOR_THING": "keep me",
        "PLATFORM_TOKEN": "new token",
        "PLATFORM_API_URL": "https://a.example",
    }


def test_update_refuses_keys_it_does_not_own(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Config.load(env(tmp_path)).update({"EDITOR_THING": "x"})


def test_update_into_the_micro_directory_leaves_micro_files_alone(tmp_path: Path) -> None:
    micro = tmp_path / ".micro"
    micro.mkdir()
    (micro / "config.json").write_text("{}")
    Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "acme-backend"})
    assert (micro / "platform.env").read_text() == "MICRO_NAMESPACE=acme-backend\n"
    assert mode(micro / "platform.env") == 0o600
    assert (micro / "config.json").read_text() == "{}"


def test_update_creates_the_directory_of_platform_config(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "dir" / "platform.env"
    Config.load(env(tmp_path, PLATFORM_CONFIG=str(target))).update({"MICRO_NAMESPACE": "n"})
    assert target.read_text() == "MICRO_NAMESPACE=n\n"
    assert mode(target) == 0o600


def test_write_is_atomic_temp_file_in_same_directory_fsynced_then_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".micro"
    path.write_text("OLD=1\n")
    events: list[Any] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: Path) -> None:
        src_path = Path(src)
        events.append(("replace", src_path.parent, Path(dst)))
        # At the moment of the rename the temporary file is complete and already private.
        assert src_path.read_text() == "NEW=2\n"
        assert mode(src_path) == 0o600
        assert path.read_text() == "OLD=1\n"
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(path, "NEW=2\n")
    assert events[0] == "fsync"
    assert events[1] == ("replace", tmp_path, path)
    assert path.read_text() == "NEW=2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".micro"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".micro"
    path.write_text("OLD=1\n")

    def broken_replace(src: str, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(path, "NEW=2\n")
    assert path.read_text() == "OLD=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".micro"]


def test_writing_through_a_symlink_replaces_the_target(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "micro.env"
    real.parent.mkdir()
    real.write_text("A=1\n")
    (tmp_path / ".micro").mkdir()
    link = tmp_path / ".micro" / "platform.env"
    link.symlink_to(real)
    Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "n"})
    assert link.is_symlink()
    assert real.read_text() == "A=1\nMICRO_NAMESPACE=n\n"
    assert mode(real) == 0o600


# -- ~/.micro is micro v3's directory: an earlier version's file is moved into it ----------------------


def test_the_first_write_moves_a_micro_file_into_the_directory_nothing_lost(tmp_path: Path) -> None:
    micro = tmp_path / ".micro"
    before = "# mine\nFOREIGN=keep me\nexport PLATFORM_TOKEN='old'\nCERT=\"l1\nl2\"\n"
    micro.write_text(before)
    config = Config.load(env(tmp_path))
    config.update({"MICRO_NAMESPACE": "acme-backend"})
    assert micro.is_dir() and mode(micro) == 0o700
    assert config.location.path == micro / "platform.env"
    assert config.moved and "~/.micro/platform.env" in config.moved
    assert (micro / "platform.env").read_text() == before + "MICRO_NAMESPACE=acme-backend\n"
    assert mode(micro / "platform.env") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".micro"]  # no staging or backup left behind
    assert Config.load(env(tmp_path)).file_values["FOREIGN"] == "keep me"


def test_a_micro_file_that_is_not_utf8_is_moved_byte_for_byte(tmp_path: Path) -> None:
    (tmp_path / ".micro").write_bytes(b"LATIN=caf\xe9\n")
    Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "n"})
    assert (tmp_path / ".micro" / "platform.env").read_bytes().startswith(b"LATIN=caf\xe9\n")


def test_a_micro_file_holding_json_is_micro_s_old_config_and_becomes_config_json(tmp_path: Path) -> None:
    # micro's util/config/config.go (moveConfig) moves a ~/.micro file holding its JSON to config.json.
    (tmp_path / ".micro").write_text('{"env":"local","git":{"baseurl":"x"}}')
    Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "n"})
    assert (tmp_path / ".micro" / "config.json").read_text() == '{"env":"local","git":{"baseurl":"x"}}'
    assert (tmp_path / ".micro" / "platform.env").read_text() == "MICRO_NAMESPACE=n\n"


def test_a_micro_symlink_to_a_file_becomes_the_directory_and_its_target_is_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "micro.env"
    real.parent.mkdir()
    real.write_text("A=1\n")
    (tmp_path / ".micro").symlink_to(real)
    Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "n"})
    assert not (tmp_path / ".micro").is_symlink() and (tmp_path / ".micro").is_dir()
    assert (tmp_path / ".micro" / "platform.env").read_text() == "A=1\nMICRO_NAMESPACE=n\n"
    assert real.read_text() == "A=1\n"


def test_a_failed_move_puts_the_micro_file_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    micro = tmp_path / ".micro"
    micro.write_text("OLD=1\n")
    real_rename = os.rename
    calls: list[str] = []

    def rename(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if Path(dst) == micro and Path(src).is_dir():
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "n"})
    assert micro.is_file() and micro.read_text() == "OLD=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".micro"]
    assert len(calls) == 3  # aside, the directory in (refused), back


def test_a_micro_directory_the_cli_creates_is_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        Config.load(env(tmp_path)).update({"MICRO_NAMESPACE": "n"})
    finally:
        os.umask(old)
    assert mode(tmp_path / ".micro") == 0o700
    assert mode(tmp_path / ".micro" / "platform.env") == 0o600


def test_platform_config_elsewhere_leaves_a_micro_file_alone(tmp_path: Path) -> None:
    (tmp_path / ".micro").write_text("A=1\n")
    target = tmp_path / "conf.env"
    Config.load(env(tmp_path, PLATFORM_CONFIG=str(target))).update({"MICRO_NAMESPACE": "n"})
    assert (tmp_path / ".micro").read_text() == "A=1\n"
    assert target.read_text() == "MICRO_NAMESPACE=n\n"
