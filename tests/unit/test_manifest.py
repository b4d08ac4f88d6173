"""The service manifest: every rule, the field and line in each message, the quota, YAML errors, and
which services a push changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.manifest_yaml import load_manifest, parse_yaml
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.manifest import (
    ManifestError,
    ServiceManifest,
    changed_services,
    env_var_problem,
    parse_manifest,
    removed_services,
)
from chalicelib.domain.ports import ResourceQuota

QUOTA = ResourceQuota(memory_mib=1024, cpu_millicores=1000, ephemeral_storage_mib=1024)

FULL = """\
services:
  - name: hello
    path: services/hello
    command: ["python3", "server.py"]
    port: 8080
    health: /health
    env: {GREETING: hi}
    instances: 2
    cpu: 250
    memory: 256
    deadline: 120
"""


def entry_of(**fields: Any) -> dict[str, Any]:
    return {"name": "svc", "command": "python3 server.py", "port": 8080, **fields}


def line_of(fields: dict[str, Any], key: str) -> int:
    """The line of ``key`` in ``service(**fields)``: the entry's keys start on line 2."""
    return list(entry_of(**fields)).index(key) + 2


def service(**fields: Any) -> str:
    """A one-service manifest, one key a line from line 2 (overridden defaults keep their place)."""
    entry = entry_of(**fields)
    lines = ["services:"]
    for i, (key, value) in enumerate(entry.items()):
        lines.append(f"{'  - ' if i == 0 else '    '}{key}: {value}")
    return "\n".join(lines) + "\n"


def error_of(text: str, quota: ResourceQuota | None = QUOTA, **kwargs: Any) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_manifest(text, quota, **kwargs)
    return info.value


# --------------------------------------------------------------------------- valid manifests


def test_full_manifest_parses() -> None:
    [hello] = load_manifest(FULL, QUOTA)
    assert hello == ServiceManifest(
        name="hello",
        path="services/hello",
        command=("python3", "server.py"),
        port=8080,
        health_path="/health",
        env={"GREETING": "hi"},
        instances=2,
        cpu_millicores=250,
        memory_mib=256,
        deadline_seconds=120,
    )
    assert hello.to_dict()["command"] == ["python3", "server.py"]


def test_defaults_and_string_command() -> None:
    [svc] = load_manifest("services:\n  - name: a\n    command: python3 -u 'my server.py'\n    port: 80\n", None)
    assert svc.command == ("python3", "-u", "my server.py")
    assert (svc.path, svc.health_path, svc.env, svc.instances) == (".", "/health", {}, 1)
    assert (svc.cpu_millicores, svc.memory_mib, svc.deadline_seconds) == (100, 128, 600)


def test_path_is_normalised() -> None:
    [svc] = load_manifest(service(path="./services//api/"), None)
    assert svc.path == "services/api"


def test_several_services_in_order() -> None:
    text = FULL + "  - name: worker\n    command: [./worker]\n    port: 9000\n"
    assert [s.name for s in load_manifest(text, QUOTA)] == ["hello", "worker"]


def test_manifest_error_is_a_validation_error() -> None:
    assert issubclass(ManifestError, ValidationError)


# --------------------------------------------------------------------------- field and line in messages


def test_port_out_of_range_names_field_and_line() -> None:
    text = FULL.replace("port: 8080", "port: 70000")
    err = error_of(text)
    assert err.message == "micro.yaml line 5: services[0].port: must be between 1 and 65535"
    assert err.details["field"] == "services[0].port"
    assert err.details["line"] == 5
    assert err.details["problems"] == [
        {"field": "services[0].port", "line": 5, "message": "must be between 1 and 65535"}
    ]


def test_every_problem_is_collected_first_in_the_message() -> None:
    text = FULL.replace("port: 8080", "port: 0").replace("instances: 2", "instances: 11")
    err = error_of(text)
    assert err.message.startswith("micro.yaml line 5: services[0].port:")
    assert "(and 1 more)" in err.message
    assert [(p["field"], p["line"]) for p in err.details["problems"]] == [
        ("services[0].port", 5),
        ("services[0].instances", 8),
    ]


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"port": 0}, "port", "between 1 and 65535"),
        ({"port": "'8080'"}, "port", "whole number"),
        ({"port": "true"}, "port", "whole number"),
        ({"port": 1.5}, "port", "whole number"),
        ({"health": "health"}, "health", "absolute path"),
        ({"health": "//evil.example/x"}, "health", "absolute path"),
        ({"health": "'/he alth'"}, "health", "not a valid URL path"),
        ({"instances": 0}, "instances", "between 1 and 10"),
        ({"instances": 11}, "instances", "between 1 and 10"),
        ({"cpu": 9}, "cpu", "between 10 and 1000"),
        ({"cpu": 1001}, "cpu", "between 10 and 1000"),
        ({"memory": 31}, "memory", "between 32 and 1024"),
        ({"memory": 2048}, "memory", "between 32 and 1024"),
        ({"deadline": 29}, "deadline", "between 30 and 3600"),
        ({"deadline": 3601}, "deadline", "between 30 and 3600"),
        ({"path": "/abs"}, "path", "relative"),
        ({"path": "a/../../etc"}, "path", "'..'"),
        ({"path": "'a\\b'"}, "path", "relative"),
        ({"path": ".git"}, "path", "not an acceptable directory"),
        ({"path": "''"}, "path", "must be a directory"),
        ({"command": "[]"}, "command", "must not be empty"),
        ({"command": "''"}, "command", "must not be empty"),
        ({"command": "'python3 \"unclosed'"}, "command", "cannot be split"),
        ({"command": "{a: b}"}, "command", "list of arguments"),
        ({"env": "[A]"}, "env", "mapping of NAME: value"),
    ],
)
def test_field_rules(fields: dict[str, Any], field: str, fragment: str) -> None:
    text = service(**fields)
    err = error_of(text)
    assert err.details["field"] == f"services[0].{field}"
    line = line_of(fields, field)
    assert err.details["line"] == line
    assert fragment in err.message
    assert err.message.startswith(f"micro.yaml line {line}: services[0].{field}: ")


def test_name_rules() -> None:
    for bad in ("Hello", "-hello", "hello-", "hel_lo", "a" * 64, "'123.4'"):
        err = error_of(f"services:\n  - name: {bad}\n    command: x\n    port: 1\n")
        assert err.details["field"] == "services[0].name", bad
        assert err.details["line"] == 2
    assert load_manifest(f"services:\n  - name: {'a' * 63}\n    command: x\n    port: 1\n", None)[0].name == "a" * 63
    err = error_of("services:\n  - name: 7\n    command: x\n    port: 1\n")
    assert "must be a string" in err.message


def test_duplicate_names() -> None:
    text = "services:\n  - {name: a, command: x, port: 1}\n  - {name: a, command: y, port: 2}\n"
    err = error_of(text)
    assert err.message == "micro.yaml line 3: services[1].name: duplicate service name 'a' (also services[0])"


def test_command_items_must_be_strings() -> None:
    text = "services:\n  - name: a\n    command:\n      - python3\n      - 8\n    port: 1\n"
    err = error_of(text)
    assert err.details["field"] == "services[0].command[1]"
    assert err.details["line"] == 5
    assert "quote it" in err.message


def test_env_rules() -> None:
    text = (
        "services:\n  - name: a\n    command: x\n    port: 1\n    env:\n"
        "      lower: x\n"  # line 6
        "      PORT: '1'\n"  # line 7
        "      MICRO_NAMESPACE: x\n"  # line 8
        "      DEBUG: true\n"  # line 9
        "      COUNT: 3\n"  # line 10
        "      OK_1: fine\n"  # line 11
    )
    err = error_of(text)
    problems = [(p["field"], p["line"]) for p in err.details["problems"]]
    assert problems == [
        ("services[0].env.lower", 6),
        ("services[0].env.PORT", 7),
        ("services[0].env.MICRO_NAMESPACE", 8),
        ("services[0].env.DEBUG", 9),
        ("services[0].env.COUNT", 10),
    ]
    messages = [p["message"] for p in err.details["problems"]]
    assert "not an environment variable name" in messages[0]
    assert "reserved" in messages[1] and "reserved" in messages[2]
    assert "must be a string" in messages[3]
    [svc] = load_manifest("services:\n  - name: a\n    command: x\n    port: 1\n    env:\n      A_1: 'true'\n", None)
    assert svc.env == {"A_1": "true"}


def test_env_a_process_cannot_be_given_is_refused_at_its_line() -> None:
    text = (
        "services:\n  - name: a\n    command: x\n    port: 1\n    env:\n"
        '      "A=B": x\n'  # line 6: "=" ends a name
        '      "A\\n": x\n'  # line 7
        '      NUL: "a\\0b"\n'  # line 8: a C string ends at NUL
        '      SURROGATE: "\\ud800"\n'  # line 9: not UTF-8
        f"      BIG: {'é' * 17000}\n"  # line 10: 34,000 bytes
        '      EQUALS: "a=b=c"\n'  # fine: only the first "=" ends the name
    )
    err = error_of(text)
    assert [(p["field"], p["line"]) for p in err.details["problems"]] == [
        ("services[0].env.A=B", 6),
        ("services[0].env.A\n", 7),
        ("services[0].env.NUL", 8),
        ("services[0].env.SURROGATE", 9),
        ("services[0].env.BIG", 10),
    ]
    messages = [p["message"] for p in err.details["problems"]]
    assert "NUL" in messages[2] and "UTF-8" in messages[3] and "32 KiB" in messages[4]
    assert env_var_problem("EQUALS", "a=b=c") is None
    assert env_var_problem("X" * 129, "v") is not None and env_var_problem("X" * 128, "v") is None


def test_missing_required_keys_point_at_the_entry() -> None:
    err = error_of("services:\n  - name: a\n    path: .\n  - name: b\n")
    assert [(p["field"], p["line"], p["message"]) for p in err.details["problems"]] == [
        ("services[0]", 2, "missing required key 'command'"),
        ("services[0]", 2, "missing required key 'port'"),
        ("services[1]", 4, "missing required key 'command'"),
        ("services[1]", 4, "missing required key 'port'"),
    ]


def test_unknown_keys_are_errors() -> None:
    err = error_of(service(comand="x"))
    assert err.details["field"] == "services[0].comand"
    assert err.details["line"] == 5
    assert "unknown key 'comand'" in err.message
    err = error_of("services:\n  - {name: a, command: x, port: 1}\nversion: 2\n")
    assert err.message == "micro.yaml line 3: version: unknown key 'version' (expected 'services')"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- a\n", "must be a mapping"),
        ("other: 1\n", "missing required key 'services'"),
        ("services: {}\n", "must be a list"),
        ("services: []\n", "at least one service"),
        ("services:\n  - just-a-name\n", "must be a mapping"),
    ],
)
def test_document_shape(text: str, fragment: str) -> None:
    assert any(fragment in p["message"] for p in error_of(text).details["problems"])


def test_path_must_exist_in_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "services" / "hello").mkdir(parents=True)
    (tmp_path / "afile").write_text("x")
    assert load_manifest(FULL, QUOTA, root=tmp_path)[0].path == "services/hello"
    err = error_of(FULL.replace("services/hello", "services/nope"), root=tmp_path)
    assert (
        err.message == "micro.yaml line 3: services[0].path: directory 'services/nope' does not exist in the repository"
    )
    assert "does not exist" in error_of(service(path="afile"), root=tmp_path).message
    (tmp_path / "escape").symlink_to("/tmp")
    assert "does not exist" in error_of(service(path="escape"), root=tmp_path).message


# --------------------------------------------------------------------------- the quota


def test_totals_must_fit_the_quota() -> None:
    quota = ResourceQuota(memory_mib=1024, cpu_millicores=1000, ephemeral_storage_mib=0)
    fits = "services:\n  - {name: a, command: x, port: 1, cpu: 250, memory: 256, instances: 4}\n"
    assert load_manifest(fits, quota)[0].instances == 4
    too_much = fits + "  - {name: b, command: x, port: 1, cpu: 10, memory: 32}\n"
    err = error_of(too_much, quota)
    assert err.details["field"] == "services"
    assert err.details["line"] == 1
    assert [p["message"] for p in err.details["problems"]] == [
        "needs 1010 millicores of CPU in total (cpu x instances) but the namespace quota is 1000",
        "needs 1056 MiB of memory in total (memory x instances) but the namespace quota is 1024",
    ]
    # Without a quota only the fixed bounds apply.
    assert len(load_manifest(too_much, None)) == 2


# --------------------------------------------------------------------------- YAML itself


def test_yaml_syntax_error_has_its_line() -> None:
    text = "services:\n  - name: a\n    command: [x\n    port: 1\n"
    err = error_of(text)
    assert err.message.startswith("micro.yaml line ")
    assert "invalid YAML" in err.message
    assert err.details["line"] in (3, 4, 5)
    err = error_of("services:\n  - name: a\n\tport: 1\n")
    assert err.details["line"] == 3


def test_duplicate_yaml_keys_are_errors() -> None:
    err = error_of("services:\n  - name: a\n    command: x\n    port: 1\n    port: 2\n")
    assert err.message == "micro.yaml line 5: services[0].port: duplicate key 'port' (first on line 4)"


def test_unsafe_tags_are_refused() -> None:
    err = error_of("services: !!python/object/apply:os.system ['echo pwned']\n")
    assert err.details["line"] == 1
    assert "YAML" in err.message


def test_empty_and_multi_document_files() -> None:
    assert "is empty" in error_of("").message
    assert "invalid YAML" in error_of("services: []\n---\nservices: []\n").message


def test_a_document_nested_thousands_of_levels_deep_is_an_error_naming_its_line() -> None:
    err = error_of("services:\n  - name: a\n    env: " + "[" * 30000 + "]" * 30000 + "\n")
    assert err.message == "micro.yaml line 3: is nested more than 32 levels deep"
    block = "services:\n" + "".join("  " * depth + f"k{depth}:\n" for depth in range(1, 40))
    err = error_of(block)
    assert err.message == "micro.yaml line 32: is nested more than 32 levels deep"
    assert err.details["line"] == 32


def test_a_manifest_over_64_kib_is_refused() -> None:
    assert error_of("services: []\n" + "#" * (64 * 1024)).message == "micro.yaml: is larger than 64 KiB"


def test_aliases_are_walked_once() -> None:
    text = "x: &a [1, 2, 3]\n" + "".join(
        f"y{i}: &a{i} [*{'a' if i == 0 else f'a{i - 1}'}, *{'a' if i == 0 else f'a{i - 1}'}]\n" for i in range(30)
    )
    _, lines = parse_yaml(text)
    assert lines["x"] == 1
    assert len(lines) < 200


def test_lines_map() -> None:
    _, lines = parse_yaml(FULL)
    assert lines["services"] == 1
    assert lines["services[0]"] == 2
    assert lines["services[0].port"] == 5
    assert lines["services[0].env.GREETING"] == 7
    assert lines["services[0].command[1]"] == 4


def test_parse_manifest_without_lines() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest({"services": [{"name": "a", "command": "x", "port": 0}]}, {}, None)
    assert info.value.message == "micro.yaml: services[0].port: must be between 1 and 65535"
    assert info.value.details["line"] is None


# --------------------------------------------------------------------------- changed services


def _svc(name: str, path: str, **kw: Any) -> ServiceManifest:
    return ServiceManifest(name=name, path=path, command=("x",), port=1, **kw)


def test_changed_services_by_path() -> None:
    api, web, root = _svc("api", "services/api"), _svc("web", "services/web"), _svc("all", ".")
    new = [api, web]
    assert changed_services(new, new, ["services/api/main.py"]) == {"api"}
    assert changed_services(new, new, ["services/api"]) == {"api"}
    assert changed_services(new, new, ["./services/web/x/y.txt"]) == {"web"}
    assert changed_services(new, new, ["services/apix/main.py", "README.md"]) == set()
    assert changed_services(new, new, []) == set()
    assert changed_services([*new, root], [*new, root], ["README.md"]) == {"all"}


def test_changed_services_by_manifest_entry() -> None:
    api, web = _svc("api", "services/api"), _svc("web", "services/web")
    new = [api, _svc("web", "services/web", env={"A": "b"}), _svc("new", "services/new")]
    assert changed_services([api, web], new, ["micro.yaml"]) == {"web", "new"}
    assert changed_services(None, [api, web], ["micro.yaml"]) == {"api", "web"}
    assert changed_services(None, [api, web], []) == {"api", "web"}
    assert removed_services([api, web], [api]) == {"web"}
    assert removed_services(None, [api]) == set()
