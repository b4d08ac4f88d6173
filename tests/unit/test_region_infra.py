"""The regions' Terraform (infra/modules/runtime-cluster/*, infra/modules/micro-runtime,
infra/modules/terraform-runner, infra/examples/*), checked offline:

- every cloud's composition (aws, gcp, azure, digitalocean, local) outputs the four values the region
  state machine registers (api_address, proxy_address, credentials_secret, capacity), and every cluster
  module outputs its capacity as {cpu_millicores, memory_mib}; nothing outputs the admin credential;
- `terraform validate` of the AWS cluster module and the runner's module (the AWS provider from the
  filesystem mirror, TF_PLUGIN_MIRROR), and of the local composition (built-ins only); the other clouds'
  providers are not in the mirror, so their files are parsed (python-hcl2) and not validated;
- checkov over all of it is tests/functional/test_terraform.py's, which scans the whole of infra/ (these
  modules as the compositions call them), with every skipped check named where it applies.

Where terraform or the mirror cannot be had, the test skips saying why, and fails under CI=true."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
CLOUDS = ("aws", "gcp", "azure", "digitalocean")
OUTPUTS = {"api_address", "proxy_address", "credentials_secret", "capacity"}
TERRAFORM = shutil.which("terraform")
MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
IN_CI = os.environ.get("CI") == "true"


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def load_dir(directory: Path) -> dict[str, list[Any]]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as f:
            for key, blocks in hcl2.load(f, serialization_options=options).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def outputs_of(directory: Path) -> dict[str, Any]:
    return {name: body for block in load_dir(directory).get("output", []) for name, body in block.items()}


@pytest.mark.parametrize("cloud", [*CLOUDS, "local"])
def test_every_cloud_s_composition_outputs_what_the_region_state_machine_registers(cloud: str) -> None:
    outputs = outputs_of(INFRA / "examples" / cloud)
    assert set(outputs) == OUTPUTS
    for name, body in outputs.items():
        assert not body.get("sensitive"), f"{cloud}: {name} is registered by the platform, so it holds no secret"
    reference = str(outputs["credentials_secret"]["value"])
    assert reference.startswith(("aws-secretsmanager:", "file:")), "credentials_secret names where it is kept"
    assert "random_password" not in reference and ".result" not in reference, "never the credential itself"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_cluster_module_outputs_its_capacity_and_scales_between_bounds(cloud: str) -> None:
    module = INFRA / "modules" / "runtime-cluster" / cloud
    capacity = outputs_of(module)["capacity"]["value"]
    assert set(capacity) == {"cpu_millicores", "memory_mib"}
    sizes = next(block["sizes"] for block in load_dir(module)["locals"] if "sizes" in block)
    assert set(sizes) == {"small", "medium", "large"}
    for size in sizes.values():
        assert 1 <= size["min"] <= size["max"], f"{cloud}: autoscaling bounds"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_docs_regions_capacity_table_is_what_the_modules_output(cloud: str) -> None:
    """docs/regions.md's capacity figures and namespaces per plan, recomputed from each module's sizes,
    reserve, zones and overcommit, and the plans' quotas (chalicelib/catalog.json)."""
    module = INFRA / "modules" / "runtime-cluster" / cloud
    found: dict[str, Any] = {}
    for block in load_dir(module)["locals"]:
        found.update(block)
    variables = {name: body for block in load_dir(module)["variable"] for name, body in block.items()}
    overcommit = variables["overcommit"]["default"]
    zones = found.get("zones", 1)
    plans = json.loads((REPO / "chalicelib" / "catalog.json").read_text())["plans"]
    doc = (REPO / "docs" / "regions.md").read_text()
    for size, s in found["sizes"].items():
        cpu = int((zones * s["max"] * s["allocatable_cpu"] - found["reserved_cpu"]) * overcommit)
        mib = int((zones * s["max"] * s["allocatable_mib"] - found["reserved_mib"]) * overcommit)
        held = [min(cpu // p["quota"]["cpu_millicores"], mib // p["quota"]["memory_mib"]) for p in plans]
        node_type = next(v for k, v in s.items() if k in ("instance_type", "machine_type", "vm_size", "droplet"))
        row = next((line for line in doc.splitlines() if line.startswith(f"| {cloud} | {size} |")), None)
        assert row is not None, f"docs/regions.md has no capacity row for {cloud} {size}"
        assert f"| {node_type}, {zones * s['min']}-{zones * s['max']}" in row, row
        assert f"| {cpu:,} m, {mib:,} MiB | " + " | ".join(map(str, held)) + " |" in row, row


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_cloud_composition_keeps_the_credential_in_the_platform_s_secrets_manager(cloud: str) -> None:
    config = load_dir(INFRA / "examples" / cloud)
    modules = {name: body for block in config["module"] for name, body in block.items()}
    assert modules["cluster"]["source"] == f"../../modules/runtime-cluster/{cloud}"
    assert modules["micro"]["source"] == "../../modules/micro-runtime"
    assert modules["micro"]["platform_secret"] == "${random_password.platform.result}"
    resources = {rtype: body for block in config["resource"] for rtype, body in block.items()}
    assert "aws_secretsmanager_secret" in resources and "aws_secretsmanager_secret_version" in resources
    (backend,) = next(block["backend"] for block in config["terraform"] if "backend" in block)
    assert backend == {"s3": {}}, "the runner passes the state bucket and key with -backend-config"


def test_the_micro_runtime_module_takes_the_credential_as_a_sensitive_input_and_outputs_only_addresses() -> None:
    module = INFRA / "modules" / "micro-runtime"
    variables = {name: body for block in load_dir(module)["variable"] for name, body in block.items()}
    assert variables["platform_secret"]["sensitive"] is True
    assert set(outputs_of(module)) == {"api_address", "proxy_address"}


# --------------------------------------------------------------------------- terraform validate

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


@pytest.mark.parametrize("directory", ["modules/runtime-cluster/aws", "modules/terraform-runner", "examples/local"])
def test_terraform_validate_offline(directory: str, tmp_path: Path) -> None:
    if TERRAFORM is None:
        unavailable("the terraform binary is not on PATH")
    if directory != "examples/local" and not any((MIRROR / "registry.terraform.io" / "hashicorp" / "aws").glob("5.*")):
        unavailable(f"no AWS provider 5.x in the filesystem mirror at {MIRROR}")
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    config = tmp_path / "terraform.tfrc"
    config.write_text(CLI_CONFIG.format(mirror=MIRROR))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        TF_CLI_CONFIG_FILE=str(config), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1", HOME=str(tmp_path)
    )
    where = copy / directory
    init = subprocess.run(
        [TERRAFORM, "init", "-backend=false", "-no-color"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    result = subprocess.run(
        [TERRAFORM, "validate", "-json", "-no-color"], cwd=where, env=env, capture_output=True, text=True, timeout=300
    )
    report = json.loads(result.stdout)
    assert report["valid"] and report["error_count"] == 0, json.dumps(report["diagnostics"], indent=2)
