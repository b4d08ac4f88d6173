"""The Terraform runner (chalicelib/adapters/terraform.py) against the real binary, on configurations of
built-in resources only (tests/fixtures/terraform): plan summary, saved plan applied, outputs, the log
kept, destroy; a failing apply answers failed with Terraform's reason and the end of its log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chalicelib.adapters.terraform import TerraformRunner
from chalicelib.domain.ports import PlanSummary, TerraformRun
from tests.helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None, reason="the terraform binary is not on PATH")
FIXTURES = ROOT / "tests" / "fixtures" / "terraform"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TerraformRunner:
    config = tmp_path / "terraform.tfrc"
    config.write_text("")  # no provider installation needed: built-ins only, nothing downloaded
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(config))
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")
    return TerraformRunner(FIXTURES, tmp_path / "work")


def run(cloud: str, attempt: int = 1) -> TerraformRun:
    return TerraformRun("eu-1", cloud, attempt, {"name": "eu-1", "region": "local", "size": "small"})


def test_plan_apply_outputs_and_destroy_through_the_real_binary(runner: TerraformRunner, tmp_path: Path) -> None:
    planned = runner.plan(run("ok"))
    assert planned.ok, planned.reason
    assert planned.summary == PlanSummary(add=1, change=0, destroy=0)
    assert (tmp_path / "work" / "eu-1" / "examples" / "ok" / "plan-1.tfplan").is_file()

    applied = runner.apply(run("ok"))
    assert applied.ok, applied.reason
    assert applied.outputs == {
        "api_address": "http://eu-1.example:8080",
        "capacity": {"cpu_millicores": 4000, "memory_mib": 4096},
    }
    log = Path(applied.log).read_text()
    assert "$ terraform apply -auto-approve plan-1.tfplan" in log
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in log
    state = json.loads((tmp_path / "work" / "eu-1" / "examples" / "ok" / "terraform.tfstate").read_text())
    assert [r["type"] for r in state["resources"]] == ["terraform_data"]

    # a second attempt plans nothing new: the state is kept per region (a retry resumes)
    again = runner.plan(run("ok", attempt=2))
    assert again.ok and again.summary == PlanSummary(0, 0, 0)

    destroyed = runner.destroy(run("ok", attempt=3))
    assert destroyed.ok, destroyed.reason
    state = json.loads((tmp_path / "work" / "eu-1" / "examples" / "ok" / "terraform.tfstate").read_text())
    assert state["resources"] == []


def test_a_failing_apply_is_failed_with_the_reason_and_the_end_of_the_log(runner: TerraformRunner) -> None:
    planned = runner.plan(run("broken"))
    assert planned.ok and planned.summary == PlanSummary(1, 0, 0)
    applied = runner.apply(run("broken"))
    assert not applied.ok
    assert applied.reason is not None and "local-exec provisioner error" in applied.reason
    assert "quota exceeded for node pools in local" in applied.log_excerpt
    assert "exit 1" in applied.log_excerpt  # the command's exit, as the log recorded it
    assert "quota exceeded" in Path(applied.log).read_text()  # the whole log is kept too


def test_applying_without_a_plan_of_that_attempt_fails_saying_so(runner: TerraformRunner) -> None:
    applied = runner.apply(run("ok", attempt=7))
    assert not applied.ok
    assert applied.reason == "there is no saved plan of attempt 7 to apply: plan first"


def test_an_unknown_cloud_fails_without_running_anything(runner: TerraformRunner) -> None:
    result = runner.plan(run("nowhere"))
    assert not result.ok and result.reason == "there is no configuration for the cloud 'nowhere'"
