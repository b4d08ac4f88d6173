"""Static and offline checks of the Terraform under infra/.

(a) every .tf file parses with python-hcl2, and the platform module reads the shared declaration and
    protects the table; (b) `terraform fmt -check`; (c) `terraform init -backend=false` + `validate`
    on the module and the compositions, and the module's own `terraform test` suite (mocked provider).

(b) and (c) need the `terraform` binary; (c) also needs the AWS provider in a local filesystem mirror
(TF_PLUGIN_MIRROR, default /opt/tf-plugins). Terraform is run from a copy of infra/ in tmp_path with a
CLI config that installs hashicorp providers from the mirror only, so nothing touches the network and
no .terraform directory lands in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MODULE = INFRA / "modules" / "platform"
ENVS = INFRA / "envs"
RESOURCES_FILE = INFRA / "resources.json"

TERRAFORM = shutil.which("terraform")
MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
AWS_PROVIDER_IN_MIRROR = MIRROR / "registry.terraform.io" / "hashicorp" / "aws"
TIMEOUT_SECONDS = 300

# Under CI=true a missing terraform or mirror fails these tests (.ci/run checks both are there first);
# elsewhere they skip with the reason.
_ON_CI = os.environ.get("CI") == "true"
needs_terraform = pytest.mark.skipif(TERRAFORM is None and not _ON_CI, reason="the terraform binary is not on PATH")
needs_mirror = pytest.mark.skipif(
    not any(AWS_PROVIDER_IN_MIRROR.glob("5.*")) and not _ON_CI,
    reason=f"no AWS provider 5.x in the filesystem mirror at {AWS_PROVIDER_IN_MIRROR}",
)


def test_terraform_and_the_mirror_are_there_on_ci() -> None:
    if not _ON_CI:
        pytest.skip("checked under CI=true only")
    assert TERRAFORM is not None, "CI=true: the terraform binary is not on PATH"
    assert any(AWS_PROVIDER_IN_MIRROR.glob("5.*")), f"CI=true: no AWS provider 5.x in {AWS_PROVIDER_IN_MIRROR}"


def _tf_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*.tf") if ".terraform" not in p.parts)


def _load(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    with path.open(encoding="utf-8") as f:
        parsed: dict[str, Any] = hcl2.load(f, serialization_options=options)
    return parsed


def _load_dir(directory: Path) -> dict[str, list[Any]]:
    """Merge a directory's .tf files the way Terraform does: top-level block lists concatenated."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for key, blocks in _load(path).items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def _named(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """[{"name": {...}}, ...] -> {"name": {...}} for variable/output/module blocks."""
    return {name: body for block in blocks for name, body in block.items()}


def _resource(config: dict[str, list[Any]], rtype: str, name: str) -> dict[str, Any]:
    for block in config.get("resource", []):
        if name in block.get(rtype, {}):
            resource: dict[str, Any] = block[rtype][name]
            return resource
    raise AssertionError(f"no resource {rtype}.{name}")


# --------------------------------------------------------------------------------------------------
# (a) static checks with python-hcl2
# --------------------------------------------------------------------------------------------------


def test_the_module_and_both_compositions_exist() -> None:
    for directory in (MODULE, ENVS / "dev", ENVS / "prod"):
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (directory / name).is_file(), f"missing {directory / name}"
    for stage in ("dev", "prod"):
        assert (ENVS / stage / "backend.tf").is_file()


@pytest.mark.parametrize("path", _tf_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_tf_file_parses(path: Path) -> None:
    assert isinstance(_load(path), dict)


def test_the_module_reads_the_shared_declaration_with_jsondecode() -> None:
    config = _load_dir(MODULE)
    local_values = [value for block in config["locals"] for value in block.values()]
    assert "${jsondecode(file(var.resources_file))}" in local_values


def test_every_table_setting_the_module_reads_is_declared() -> None:
    """The module and resources.json cannot drift apart: each local.table.<key> it uses is declared."""
    declared = json.loads(RESOURCES_FILE.read_text(encoding="utf-8"))["table"]
    used = set(re.findall(r"local\.table\.(\w+)", (MODULE / "main.tf").read_text(encoding="utf-8")))
    assert used, "the module reads no table settings"
    assert used <= set(declared), f"read but not declared: {sorted(used - set(declared))}"


def test_the_table_has_stage_dependent_deletion_protection_and_pitr() -> None:
    table = _resource(_load_dir(MODULE), "aws_dynamodb_table", "this")
    assert table["name"] == "${local.table.name}-${var.stage}"
    assert table["deletion_protection_enabled"] == "${contains(local.table.deletion_protection_stages, var.stage)}"
    assert table["point_in_time_recovery"] == [
        {"enabled": "${contains(local.table.point_in_time_recovery_stages, var.stage)}"}
    ]
    assert table["server_side_encryption"] == [{"enabled": True}]
    assert table["stream_enabled"] is True


USES_FIELDS = {
    "table", "bus", "queues", "state_machines", "buckets", "secrets", "kms", "email", "sms", "task_tokens",
    "region_secrets",
}  # fmt: skip


def test_every_deployed_function_and_the_api_say_what_they_use() -> None:
    """Their IAM roles and resource environment come from "uses" (infra/modules/platform/iam.tf): an entry
    without it, or with a misspelt field, would silently get too little."""
    declaration = json.loads(RESOURCES_FILE.read_text(encoding="utf-8"))
    entries = [f for f in declaration["functions"] if f.get("stages", ["dev"]) != ["local"]] + [declaration["api"]]
    for entry in entries:
        assert "uses" in entry, f'{entry["name"]} has no "uses"'
        assert set(entry["uses"]) <= USES_FIELDS, f"{entry['name']}: unknown fields {set(entry['uses']) - USES_FIELDS}"
    module_fields = re.search(r"uses_fields\s*=\s*(\[[^\]]*\])", (MODULE / "iam.tf").read_text(encoding="utf-8"))
    assert module_fields is not None and set(json.loads(module_fields.group(1))) == USES_FIELDS


def test_every_secret_the_code_reads_on_aws_is_listed_in_one_declared_secret() -> None:
    """infra/README.md tells the person deploying which keys to put in which secret from these "keys": a
    secret the code reads (chalicelib/config.py SECRET_NAMES) and no secret lists stays empty on AWS."""
    from chalicelib.config import SECRET_NAMES

    declared = [
        key for secret in json.loads(RESOURCES_FILE.read_text(encoding="utf-8"))["secrets"] for key in secret["keys"]
    ]
    on_aws = set(SECRET_NAMES) - {"PLATFORM_LOCAL_KEY"}  # the local stage's key: the KMS key replaces it on AWS
    assert sorted(declared) == sorted(set(declared)), "a key listed in two secrets"
    assert set(declared) == on_aws, (
        f'add {sorted(on_aws - set(declared))} to a secret\'s "keys" in infra/resources.json (and infra/README.md); '
        f"no code reads {sorted(set(declared) - on_aws)}"
    )


def test_the_declaration_protects_prod() -> None:
    table = json.loads(RESOURCES_FILE.read_text(encoding="utf-8"))["table"]
    assert "prod" in table["deletion_protection_stages"]
    assert "prod" in table["point_in_time_recovery_stages"]


def test_the_module_pins_terraform_and_the_aws_provider() -> None:
    (terraform,) = _load(MODULE / "versions.tf")["terraform"]
    assert terraform["required_version"] == ">= 1.5"
    (providers,) = terraform["required_providers"]
    assert providers["aws"] == {"source": "hashicorp/aws", "version": "~> 5.0"}


@pytest.mark.parametrize("path", _tf_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_variable_and_output_has_a_description(path: Path) -> None:
    config = _load(path)
    for kind in ("variable", "output"):
        for name, body in _named(config.get(kind, [])).items():
            assert str(body.get("description", "")).strip(), f"{kind} {name!r} in {path.name} has no description"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_composition_calls_the_module_with_its_stage_and_the_shared_file(stage: str) -> None:
    config = _load_dir(ENVS / stage)
    module = _named(config["module"])["platform"]
    assert module["source"] == "../../modules/platform"
    assert module["stage"] == "${var.stage}"
    assert module["resources_file"] == "${path.module}/../../resources.json"
    assert _named(config["variable"])["stage"]["default"] == stage
    (backend,) = next(block["backend"] for block in config["terraform"] if "backend" in block)
    assert "bucket" not in backend["s3"], "the state bucket belongs in -backend-config, not in the code"


def test_no_tfvars_files_are_kept_in_the_repository() -> None:
    assert not [p for p in INFRA.rglob("*.tfvars*") if ".terraform" not in p.parts]


# --------------------------------------------------------------------------------------------------
# (b) and (c): the terraform binary, offline
# --------------------------------------------------------------------------------------------------

CLI_CONFIG = """\
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/hashicorp/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/*"]
  }}
}}
"""


def _terraform(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run(
        [TERRAFORM, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture
def offline_infra(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of infra/ and an environment whose terraform installs providers from the mirror only."""
    # The module reads the declaration's state machines and .chalice/config.json beside infra/.
    copy = tmp_path / "repo" / "infra"
    ignore = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")
    shutil.copytree(INFRA, copy, ignore=ignore)
    for name in (".chalice", "statemachines"):
        shutil.copytree(REPO / name, tmp_path / "repo" / name, ignore=ignore)
    cli_config = tmp_path / "terraform.tfrc"
    cli_config.write_text(CLI_CONFIG.format(mirror=MIRROR), encoding="utf-8")
    # Nothing inherited may redirect terraform (plugin caches, data dirs, variables, workspaces).
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",  # no version check against checkpoint-api.hashicorp.com
        HOME=str(tmp_path),
    )
    return copy, env


def _init(directory: Path, env: dict[str, str]) -> None:
    result = _terraform(["init", "-backend=false", "-no-color"], directory, env)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_terraform_fmt_is_clean() -> None:
    result = _terraform(["fmt", "-check", "-recursive", "-no-color", "infra"], REPO)
    assert result.returncode == 0, f"run `terraform fmt -recursive infra`; unformatted:\n{result.stdout}{result.stderr}"


@needs_terraform
@needs_mirror
@pytest.mark.parametrize("directory", ["modules/platform", "envs/prod", "envs/dev"])
def test_terraform_validate(directory: str, offline_infra: tuple[Path, dict[str, str]]) -> None:
    copy, env = offline_infra
    _init(copy / directory, env)
    result = _terraform(["validate", "-json", "-no-color"], copy / directory, env)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["error_count"] == 0
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


@needs_terraform
@needs_mirror
def test_terraform_test_suite_of_the_module(offline_infra: tuple[Path, dict[str, str]]) -> None:
    """infra/modules/platform/tests/*.tftest.hcl: plans and applies against a mocked AWS provider."""
    copy, env = offline_infra
    module = copy / "modules" / "platform"
    _init(module, env)
    result = _terraform(["test", "-no-color"], module, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
