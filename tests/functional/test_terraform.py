"""The Terraform of infra/ against a moto server on loopback, and checkov over infra/.

- **One truth**: `terraform plan` of infra/envs/dev (with packages this module builds, the provider
  pointed at a moto server through a test-only override file) is read back with `terraform show -json`
  and compared with infra/resources.json: table keys and indexes, queues and their redrives, rules and
  their patterns, schedules, state machines, functions (and the API). Every top-level kind of the
  declaration must be one this test compares, so a new kind the module ignores fails too.
- **Least privilege**: each function's role names exactly what its declaration entry uses; the API's
  role is `.chalice/policy-<stage>.json`.
- **Apply and destroy** of the resources moto's Terraform support handles (``APPLIED``; why the rest is
  left out is written beside it).
- **checkov** over infra/, from its own virtualenv (``requirements-checkov.txt``), with no failure: every
  skipped check is named in the .tf file with its reason.

One moto server and one plan for the whole module (the plan takes about 30 s). Terraform, the AWS
provider in the filesystem mirror and (for checkov) PyPI are needed: without them the tests skip with
the reason, and fail under CI=true (.ci/run checks that terraform and the mirror are there)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import package

REPO = Path(__file__).resolve().parents[2]
DECLARATION = json.loads((REPO / "infra" / "resources.json").read_text(encoding="utf-8"))
TERRAFORM = shutil.which("terraform")
MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))
AWS_PROVIDER_IN_MIRROR = MIRROR / "registry.terraform.io" / "hashicorp" / "aws"
CHECKOV_REQUIREMENTS = REPO / "requirements-checkov.txt"
STAGE = "dev"
TIMEOUT_SECONDS = 600

# Every top-level key of resources.json, and who answers for it here. A new kind must be added to this
# table with a comparison below (or the reason it has no AWS counterpart): the test fails until it is.
KINDS = {
    "_comment": None,
    "table": "compared: keys, attributes, indexes",
    "event_bus": "compared: name",
    "functions": "compared: one function per entry of the stage, handler, memory, timeout, role",
    "api": "compared: the API's function and .chalice/policy-<stage>.json",
    "queues": "compared: queue, dead-letter queue, redrive, consumer mapping",
    "buckets": "compared: bucket name and expiry",
    "rules": "compared: rule, pattern, target queue",
    "state_machines": "compared: name, type, rendered definition",
    "schedules": "compared: expression, target, input",
    "ses_identity": "compared: the identity",
    "secrets": "compared: one secret per entry",
    "kms_key": "compared: the alias",
    "local": None,  # read by the local cloud only (startup and shutdown functions)
    # The regions' Terraform runner (a container task fed by the terraform-runs queue): its ECS task,
    # Pipe and state bucket are infra/modules/terraform-runner, not part of modules/platform.
    "tasks": None,
}

# What `terraform apply` creates on the moto server (-target), and why the rest is left out:
# - aws_sfn_state_machine: moto 5.2.5 lacks ValidateStateMachineDefinition, which the provider calls and
#   retries forever (this module's server answers it only so that `plan` can run);
# - aws_sqs_queue_redrive_allow_policy: moto does not echo RedriveAllowPolicy back as the provider waits for,
#   so the provider waits for it until its timeout;
# - aws_api_gateway_rest_api: importing the Swagger body does not complete on moto, and everything that
#   needs the API's id waits on it: the functions (their PLATFORM_PUBLIC_URL), their event source
#   mappings, the schedules, the Lambda permission, the stage and the alarms on functions, executions and
#   the API; aws_iam_role_policy_attachment of an AWS managed policy does not complete either.
APPLIED = [
    "aws_dynamodb_table.this",
    "aws_cloudwatch_event_bus.this",
    "aws_cloudwatch_event_rule.this",
    "aws_cloudwatch_event_target.this",
    "aws_sqs_queue.this",
    "aws_sqs_queue.dlq",
    "aws_sqs_queue.schedules_dlq",
    "aws_sqs_queue_policy.this",
    "aws_s3_bucket.this",
    "aws_s3_bucket_public_access_block.this",
    "aws_s3_bucket_server_side_encryption_configuration.this",
    "aws_s3_bucket_lifecycle_configuration.this",
    "aws_iam_role.principal",
    "aws_iam_role_policy.principal",
    "aws_iam_role.state_machine",
    "aws_iam_role_policy.state_machine",
    "aws_iam_role.scheduler",
    "aws_iam_role_policy.scheduler",
    "aws_cloudwatch_log_group.function",
    "aws_cloudwatch_log_group.state_machine",
    "aws_cloudwatch_log_group.api_access",
    "aws_kms_key.this",
    "aws_kms_alias.this",
    "aws_secretsmanager_secret.this",
    "aws_secretsmanager_secret_version.this",
    "aws_sns_topic.alarms",
    "aws_cloudwatch_metric_alarm.dead_letters",
    "aws_ses_email_identity.this",
    "aws_sns_sms_preferences.this",
    "aws_s3_bucket.artifacts",
    "aws_s3_bucket_public_access_block.artifacts",
    "aws_s3_bucket_server_side_encryption_configuration.artifacts",
    "aws_s3_object.layer",
    "aws_lambda_layer_version.this",
]

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

ENDPOINTS = [
    "apigateway",
    "cloudwatch",
    "dynamodb",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "route53",
    "s3",
    "scheduler",
    "secretsmanager",
    "ses",
    "sfn",
    "sns",
    "sqs",
    "sts",
]

MOTO_OVERRIDE = """\
# Test only (tests/functional/test_terraform.py): local state, and the provider pointed at a moto server.
terraform {{
  backend "local" {{}}
}}

provider "aws" {{
  region                      = "{region}"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {{
{endpoints}
  }}
}}
"""


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def _terraform(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    return subprocess.run(
        [TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    if TERRAFORM is None:
        _missing("the terraform binary is not on PATH")
    if not any(AWS_PROVIDER_IN_MIRROR.glob("5.*")):
        _missing(f"no AWS provider 5.x in the filesystem mirror at {AWS_PROVIDER_IN_MIRROR}")
    from moto.server import ThreadedMotoServer
    from moto.stepfunctions.responses import StepFunctionResponse

    # moto has no ValidateStateMachineDefinition, which the provider calls while planning a state
    # machine: answer it as AWS answers a valid definition (API reference, ValidateStateMachineDefinition).
    # The definitions themselves are checked by the local cloud, which runs them.
    def validate(self: Any) -> str:
        return json.dumps({"result": "OK", "diagnostics": [], "truncated": False})

    had = getattr(StepFunctionResponse, "validate_state_machine_definition", None)
    StepFunctionResponse.validate_state_machine_definition = validate  # type: ignore[attr-defined]
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        if had is None:
            del StepFunctionResponse.validate_state_machine_definition  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> tuple[Path, dict[str, str]]:
    """A copy of what Terraform reads (infra/, .chalice/, statemachines/), a CLI config using the mirror
    only, and the variables `make package` would write, with a small stand-in for the layer."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("infra", ".chalice", "statemachines"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    cli_config = root / "terraform.tfrc"
    cli_config.write_text(CLI_CONFIG.format(mirror=MIRROR), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TF_", "AWS_"))}
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1", HOME=str(root)
    )
    return root, env


def _package_variables(root: Path, declaration: dict[str, Any]) -> Path:
    build = root / "build"
    layer = build / "layer.zip"
    layer.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(layer, "w") as archive:  # the real layer is 37 MB and built from PyPI
        archive.writestr("python/README", "test stand-in for the layer")
    functions = {f["name"]: package.described(package.function_zip(f, build)) for f in declaration["functions"]}
    variables = {
        "function_packages": functions,
        "layer_package": package.described(layer),
        "api_package": package.described(package.api_zip(build)),
        "api_definition_file": str(package.api_swagger(build)),
    }
    path = build / "packages.tfvars.json"
    path.write_text(json.dumps(variables), encoding="utf-8")
    return path


def _env_dir(root: Path, endpoint: str, region: str = "us-east-1") -> Path:
    directory = root / "infra" / "envs" / STAGE
    endpoints = "\n".join(f'    {name:<14} = "{endpoint}"' for name in ENDPOINTS)
    (directory / "moto_override.tf").write_text(MOTO_OVERRIDE.format(region=region, endpoints=endpoints))
    return directory


@pytest.fixture(scope="module")
def dev_plan(workdir: tuple[Path, dict[str, str]], moto_endpoint: str) -> dict[str, Any]:
    root, env = workdir
    directory = _env_dir(root, moto_endpoint)
    variables = _package_variables(root, DECLARATION)
    _ok(_terraform(["init", "-no-color"], directory, env))
    _ok(_terraform(["plan", "-no-color", "-out=dev.tfplan", f"-var-file={variables}"], directory, env))
    plan: dict[str, Any] = json.loads(_ok(_terraform(["show", "-json", "dev.tfplan"], directory, env)))
    return plan


def planned(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """address without the module prefix -> planned values, e.g. 'aws_sqs_queue.this["metering"]'."""
    out: dict[str, dict[str, Any]] = {}

    def walk(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            out[resource["address"].removeprefix("module.platform.")] = resource.get("values", {})
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan["planned_values"]["root_module"])
    return out


def _of_type(resources: dict[str, dict[str, Any]], address: str) -> dict[str, dict[str, Any]]:
    """'aws_sqs_queue.this' -> {key: values} for every instance of it."""
    pattern = re.compile(re.escape(address) + r'(?:\["([^"]+)"\]|\[(\d+)\])?$')
    found = {}
    for name, values in resources.items():
        match = pattern.match(name)
        if match:
            found[match.group(1) or match.group(2) or ""] = values
    return found


def drift(declaration: dict[str, Any], plan: dict[str, Any], stage: str = STAGE) -> list[str]:
    """What the declaration has and the plan does not (or has otherwise); empty when they agree."""
    problems: list[str] = []
    resources = planned(plan)

    def check(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    for kind in declaration:
        check(kind in KINDS, f"resources.json has {kind!r}, a kind this test does not compare (add it to KINDS)")

    table = declaration["table"]
    (planned_table,) = _of_type(resources, "aws_dynamodb_table.this").values()
    check(planned_table["name"] == f"{table['name']}-{stage}", "table name")
    check((planned_table["hash_key"], planned_table["range_key"]) == (table["hash_key"], table["range_key"]), "keys")
    check({a["name"] for a in planned_table["attribute"]} == set(table["attributes"]), "table attributes")
    check(
        {
            (i["name"], i["hash_key"], i.get("range_key"), i["projection_type"])
            for i in planned_table["global_secondary_index"]
        }
        == {(i["name"], i["hash_key"], i.get("range_key"), i["projection"]) for i in table["global_secondary_indexes"]},
        "table indexes",
    )
    check(planned_table["ttl"][0]["attribute_name"] == table["ttl_attribute"], "table TTL")
    (bus,) = _of_type(resources, "aws_cloudwatch_event_bus.this").values()
    check(bus["name"] == f"{declaration['event_bus']['name']}-{stage}", "event bus")

    functions = {f["name"]: f for f in declaration["functions"] if stage in f.get("stages", [stage])}
    lambdas = _of_type(resources, "aws_lambda_function.this")
    check(set(lambdas) == set(functions), f"functions: declared {sorted(functions)}, planned {sorted(lambdas)}")
    for name, f in functions.items():
        got = lambdas.get(name, {})
        check(
            (
                got.get("function_name"),
                got.get("handler"),
                got.get("memory_size"),
                got.get("timeout"),
                got.get("runtime"),
            )
            == (f"{name}-{stage}", f["handler"], f["memory"], f["timeout"], "python3.11"),
            f"function {name}: name, handler, memory, timeout or runtime",
        )
    roles = _of_type(resources, "aws_iam_role.principal")
    check(set(roles) == set(functions) | {declaration["api"]["name"]}, "one role per function and the API")
    (api,) = _of_type(resources, "aws_lambda_function.api").values()
    check(
        api["function_name"] == f"{declaration['api']['name']}-{stage}"
        and api["handler"] == declaration["api"]["handler"],
        "API function",
    )

    queues = {q["name"]: q for q in declaration.get("queues", [])}
    planned_queues, dlqs = _of_type(resources, "aws_sqs_queue.this"), _of_type(resources, "aws_sqs_queue.dlq")
    check(
        set(planned_queues) == set(queues) == set(dlqs),
        f"queues: declared {sorted(queues)}, planned {sorted(planned_queues)}",
    )
    mappings = _of_type(resources, "aws_lambda_event_source_mapping.this")
    for name, q in queues.items():
        got = planned_queues.get(name, {})
        check(
            got.get("name") == f"{name}-{stage}" and dlqs.get(name, {}).get("name") == f"{name}-dlq-{stage}",
            f"queue {name}: names",
        )
        check(got.get("visibility_timeout_seconds") == q["visibility_timeout"], f"queue {name}: visibility timeout")
        redrive = json.loads(got["redrive_policy"]) if got.get("redrive_policy") else {}
        check(
            redrive.get("maxReceiveCount") == q["max_receive_count"],
            f"queue {name}: redrive after {q['max_receive_count']}",
        )
        consumer = q.get("consumer", {}).get("function")
        if consumer in functions:
            mapping = mappings.get(name, {})
            check(
                mapping.get("batch_size") == q["consumer"]["batch_size"]
                and mapping.get("function_response_types") == ["ReportBatchItemFailures"],
                f"queue {name}: consumer {consumer} with its batch size, reporting item failures",
            )
    check(
        set(mappings) == {n for n, q in queues.items() if q.get("consumer", {}).get("function") in functions},
        "event source mappings",
    )

    buckets = {b["name"]: b for b in declaration.get("buckets", [])}
    planned_buckets = _of_type(resources, "aws_s3_bucket.this")
    check(set(planned_buckets) == set(buckets), "buckets")

    rules = {r["name"]: r for r in declaration.get("rules", [])}
    planned_rules, targets = (
        _of_type(resources, "aws_cloudwatch_event_rule.this"),
        _of_type(resources, "aws_cloudwatch_event_target.this"),
    )
    check(
        set(planned_rules) == set(rules) == set(targets),
        f"rules: declared {sorted(rules)}, planned {sorted(planned_rules)}",
    )
    for name, r in rules.items():
        check(
            json.loads(planned_rules.get(name, {}).get("event_pattern") or "null") == r["event_pattern"],
            f"rule {name}: pattern",
        )
        check(targets.get(name, {}).get("target_id") == f"sqs-{r['queue']}", f"rule {name}: target queue")

    machines = {m["name"]: m for m in declaration.get("state_machines", [])}
    planned_machines = _of_type(resources, "aws_sfn_state_machine.this")
    check(
        set(planned_machines) == set(machines),
        f"state machines: declared {sorted(machines)}, planned {sorted(planned_machines)}",
    )
    for name, m in machines.items():
        got = planned_machines.get(name, {})
        check(
            got.get("name") == f"{name}-{stage}" and got.get("type") == m.get("type", "STANDARD"),
            f"state machine {name}",
        )
        definition = got.get("definition") or ""
        check(
            "${" not in definition and bool(json.loads(definition or "{}").get("States")),
            f"state machine {name}: rendered",
        )
        for key, spec in (m.get("placeholders") or {}).items():
            if "function" in spec:
                check(f":function:{spec['function']}-{stage}" in definition, f"state machine {name}: {key}")

    schedules = {
        s["name"]: s
        for s in declaration.get("schedules", [])
        if "function" not in s["target"] or s["target"]["function"] in functions  # none for a local-only function
    }
    planned_schedules = _of_type(resources, "aws_scheduler_schedule.this")
    check(
        set(planned_schedules) == set(schedules),
        f"schedules: declared {sorted(schedules)}, planned {sorted(planned_schedules)}",
    )
    for name, s in schedules.items():
        got = planned_schedules.get(name, {})
        check(got.get("schedule_expression") == s["expression"], f"schedule {name}: expression")
        target = (got.get("target") or [{}])[0]
        check(json.loads(target.get("input") or "null") == s["target"].get("input", {}), f"schedule {name}: input")
        check(bool(target.get("dead_letter_config")), f"schedule {name}: dead-letter queue")

    identity = _of_type(resources, "aws_ses_email_identity.this")
    check([i["email"] for i in identity.values()] == [declaration["ses_identity"]["email"]], "SES identity")
    secrets = _of_type(resources, "aws_secretsmanager_secret.this")
    check(
        {k: v["name"] for k, v in secrets.items()}
        == {s["name"]: f"{s['name']}-{stage}" for s in declaration.get("secrets", [])},
        "secrets",
    )
    alias = _of_type(resources, "aws_kms_alias.this")
    check([a["name"] for a in alias.values()] == [f"alias/{declaration['kms_key']['alias']}-{stage}"], "KMS alias")
    return problems


# --------------------------------------------------------------------------------------------------
# one truth
# --------------------------------------------------------------------------------------------------


def test_the_dev_plan_is_exactly_the_declaration(dev_plan: dict[str, Any]) -> None:
    assert drift(DECLARATION, dev_plan) == []


# Names no branch will declare ("drift-probe"): an entry named like a real one (another branch's "reports"
# machine, say) would be in the plan once that branch is merged, and its absence would prove nothing.
@pytest.mark.parametrize(
    ("kind", "entry"),
    [
        ("queues", {"name": "drift-probe", "visibility_timeout": 60, "max_receive_count": 3}),
        ("state_machines", {"name": "drift-probe", "definition": "statemachines/deploy.asl.json", "placeholders": {}}),
        (
            "schedules",
            {"name": "drift-probe", "expression": "cron(0 6 * * ? *)", "target": {"function": "outbox-relay"}},
        ),
        (
            "functions",
            {"name": "drift-probe", "handler": "functions.outbox_relay.handler.handler", "timeout": 60, "memory": 256},
        ),
        (
            "rules",
            {"name": "drift-probe", "event_pattern": {"detail-type": ["deployment.failed"]}, "queue": "metering"},
        ),
        ("drift_probes", [{"name": "drift-probe"}]),
    ],
)
def test_an_entry_without_its_counterpart_in_the_plan_is_drift(dev_plan: dict[str, Any], kind: str, entry: Any) -> None:
    declaration = json.loads(json.dumps(DECLARATION))
    if isinstance(entry, dict):
        assert entry["name"] not in {e["name"] for e in declaration.get(kind, [])}, "a probe must be a new entry"
        declaration.setdefault(kind, []).append(entry)
    else:
        declaration[kind] = entry

    assert drift(declaration, dev_plan), f"a new {kind} entry with nothing planned for it went unnoticed"


def test_the_plan_lists_the_api_with_its_gateway_responses(dev_plan: dict[str, Any]) -> None:
    resources = planned(dev_plan)
    (rest_api,) = _of_type(resources, "aws_api_gateway_rest_api.this").values()
    body = json.loads(rest_api["body"])
    responses = body["x-amazon-apigateway-gateway-responses"]
    expected = {
        "MISSING_AUTHENTICATION_TOKEN": (404, "not_found"),
        "UNAUTHORIZED": (401, "unauthenticated"),
        "ACCESS_DENIED": (403, "forbidden"),
        "REQUEST_TOO_LARGE": (413, "payload_too_large"),
        "UNSUPPORTED_MEDIA_TYPE": (415, "unsupported_media_type"),
        "THROTTLED": (429, "rate_limited"),
        "QUOTA_EXCEEDED": (429, "rate_limited"),
        "INTEGRATION_TIMEOUT": (504, "gateway_timeout"),
        "DEFAULT_4XX": (None, "request_rejected"),
        "DEFAULT_5XX": (None, "internal_error"),
    }
    assert set(responses) == set(expected)
    for response_type, (status, code) in expected.items():
        response = responses[response_type]
        assert response.get("statusCode") == status, response_type
        # What API Gateway sends once it substitutes the $context variables (docs/api-gateway.md).
        template = response["responseTemplates"]["application/json"]
        sent = (
            template.replace("$context.error.messageString", '"Missing Authentication Token"')
            .replace("$context.requestId", "c0ffee12")
            .replace("$context.error.responseType", response_type)
        )
        error = json.loads(sent)["error"]
        assert error["code"] == code and error["details"] == {"request_id": "c0ffee12", "response_type": response_type}
    assert responses["UNAUTHORIZED"]["responseParameters"] == {
        "gatewayresponse.header.WWW-Authenticate": "'Bearer realm=\"platform\"'"
    }
    # Every route of the app goes to the API's function, as a proxy integration.
    assert "/v1/health" in body["paths"]
    uris = {op["x-amazon-apigateway-integration"]["uri"] for path in body["paths"].values() for op in path.values()}
    assert uris == {
        f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:{DECLARATION['api']['name']}-{STAGE}/invocations"
    }
    assert _of_type(resources, "aws_api_gateway_stage.this")
    assert _of_type(resources, "aws_lambda_permission.api")


def test_the_plan_has_an_alarm_for_every_dead_letter_queue_machine_and_function(dev_plan: dict[str, Any]) -> None:
    resources = planned(dev_plan)
    assert set(_of_type(resources, "aws_cloudwatch_metric_alarm.dead_letters")) == {
        q["name"] for q in DECLARATION["queues"]
    } | {"schedules"}
    failed = _of_type(resources, "aws_cloudwatch_metric_alarm.executions_failed")
    assert {key.split("-Executions")[0] for key in failed} == {m["name"] for m in DECLARATION["state_machines"]}
    assert set(_of_type(resources, "aws_cloudwatch_metric_alarm.throttles")) == set(
        _of_type(resources, "aws_iam_role.principal")
    )
    assert _of_type(resources, "aws_cloudwatch_metric_alarm.api_5xx")


# --------------------------------------------------------------------------------------------------
# least privilege
# --------------------------------------------------------------------------------------------------


def _policies(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads(v["policy"]) for name, v in _of_type(planned(plan), "aws_iam_role_policy.principal").items()
    }


def _as_chalice_policy(policy: dict[str, Any]) -> dict[str, Any]:
    """The planned policy with this plan's region and account as * (a Chalice policy file names neither)."""
    text = (
        json.dumps(policy)
        .replace(":us-east-1:", ":*:")
        .replace(":123456789012:", ":*:")
        .replace("-123456789012/", "-*/")
    )
    text = text.replace("secretsmanager.us-east-1.amazonaws.com", "secretsmanager.*.amazonaws.com")
    return dict(json.loads(text))


def test_the_chalice_policy_file_is_the_api_role_of_the_plan(dev_plan: dict[str, Any]) -> None:
    expected = _as_chalice_policy(_policies(dev_plan)[DECLARATION["api"]["name"]])
    policy_file = REPO / ".chalice" / f"policy-{STAGE}.json"
    if os.environ.get("PLATFORM_WRITE_POLICIES") == "1":  # regenerate: PLATFORM_WRITE_POLICIES=1 pytest -k chalice
        for stage in ("dev", "prod"):
            text = json.dumps(expected, indent=2).replace(f"-{STAGE}", f"-{stage}") + "\n"
            (REPO / ".chalice" / f"policy-{stage}.json").write_text(text, encoding="utf-8")
    assert json.loads(policy_file.read_text(encoding="utf-8")) == expected, (
        f"{policy_file.relative_to(REPO)} differs from the API's role in Terraform; it should read:\n"
        + json.dumps(expected, indent=2)
    )


def test_the_prod_policy_file_is_the_dev_one_for_prod() -> None:
    dev = (REPO / ".chalice" / "policy-dev.json").read_text(encoding="utf-8")
    prod = (REPO / ".chalice" / "policy-prod.json").read_text(encoding="utf-8")
    assert json.loads(prod) == json.loads(dev.replace("-dev", "-prod"))


def test_every_role_names_exactly_what_its_entry_uses(dev_plan: dict[str, Any]) -> None:
    policies = _policies(dev_plan)
    entries = {f["name"]: f for f in DECLARATION["functions"] if STAGE in f.get("stages", [STAGE])}
    entries[DECLARATION["api"]["name"]] = DECLARATION["api"]
    consumers: dict[str, set[str]] = {}  # a function may consume more than one queue (alerts and alerts-timers)
    for q in DECLARATION["queues"]:
        if "function" in q.get("consumer", {}):
            consumers.setdefault(q["consumer"]["function"], set()).add(q["name"])
    for name, entry in entries.items():
        uses = entry.get("uses", {})
        statements = {s["Sid"]: s for s in policies[name]["Statement"]}
        for statement in statements.values():
            assert statement["Effect"] == "Allow"
            assert "*" not in statement["Action"] and not any(a.endswith(":*") for a in statement["Action"]), name
            # "*" only where the action takes no resource: SMS to a phone number, a task token's answer.
            assert statement["Resource"] != ["*"] or statement["Sid"] in {"Sms", "TaskTokens"}, f"{name}: {statement}"
        resources = {sid: set(s["Resource"]) for sid, s in statements.items()}
        arn = "arn:aws:{}:us-east-1:123456789012:{}".format
        assert resources["Logs"] == {arn("logs", f"log-group:/aws/lambda/{name}-{STAGE}:*")}
        assert resources.get("SendToQueues", set()) == {arn("sqs", f"{q}-{STAGE}") for q in uses.get("queues", [])}, (
            name
        )
        assert resources.get("ConsumeQueues", set()) == (
            {arn("sqs", f"{queue}-{STAGE}") for queue in consumers.get(name, set())}
        )
        assert resources.get("StartExecutions", set()) == {
            arn("states", f"stateMachine:{m}-{STAGE}") for m in uses.get("state_machines", [])
        }, name
        assert resources.get("Secrets", set()) == {
            arn("secretsmanager", f"secret:{s}-{STAGE}-??????") for s in uses.get("secrets", [])
        }, name
        assert ("Key" in statements) == bool(uses.get("kms")), name
        assert ("Bus" in statements) == bool(uses.get("bus")), name
        assert ("TaskTokens" in statements) == bool(uses.get("task_tokens")), name
        assert resources.get("RegionSecrets", set()) == (
            {arn("secretsmanager", "secret:maas/regions/*")} if uses.get("region_secrets") else set()
        ), name
        buckets = {sid for sid in statements if sid.startswith("Objects")}
        assert len(buckets) == len(uses.get("buckets", {})), name


# --------------------------------------------------------------------------------------------------
# apply and destroy on the moto server
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_apply_and_destroy_on_the_moto_server(dev_plan: dict[str, Any], workdir: tuple[Path, dict[str, str]]) -> None:
    import boto3

    root, env = workdir
    directory = root / "infra" / "envs" / STAGE
    variables = root / "build" / "packages.tfvars.json"
    targets = [f"-target=module.platform.{address}" for address in APPLIED]
    endpoint = re.search(r'sts\s+= "([^"]+)"', (directory / "moto_override.tf").read_text()).group(1)  # type: ignore[union-attr]
    aws = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    try:
        _ok(
            _terraform(
                ["apply", "-no-color", "-auto-approve", "-parallelism=20", f"-var-file={variables}", *targets],
                directory,
                env,
            )
        )

        tables = boto3.client("dynamodb", **aws).describe_table(TableName=f"platform-{STAGE}")["Table"]
        assert {i["IndexName"] for i in tables["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2"}
        queues = boto3.client("sqs", **aws).list_queues()["QueueUrls"]
        assert {url.rsplit("/", 1)[1] for url in queues} >= {f"{q['name']}-{STAGE}" for q in DECLARATION["queues"]}
        roles = {r["RoleName"] for r in boto3.client("iam", **aws).list_roles()["Roles"]}
        assert f"outbox-relay-{STAGE}-us-east-1" in roles
        secrets = {s["Name"] for s in boto3.client("secretsmanager", **aws).list_secrets()["SecretList"]}
        assert secrets == {f"{s['name']}-{STAGE}" for s in DECLARATION["secrets"]}
        # The layer is published from the zip uploaded to the artifacts bucket (no 50 MB inline limit).
        (layer,) = boto3.client("lambda", **aws).list_layer_versions(LayerName=f"platform-{STAGE}")["LayerVersions"]
        assert layer["CompatibleRuntimes"] == ["python3.11"]
        uploaded = boto3.client("s3", **aws).get_object(
            Bucket=f"platform-artifacts-{STAGE}-123456789012", Key="layer.zip"
        )
        assert uploaded["Body"].read() == (root / "build" / "layer.zip").read_bytes()
    finally:
        destroyed = _terraform(
            ["destroy", "-no-color", "-auto-approve", f"-var-file={variables}", *targets], directory, env
        )
    _ok(destroyed)
    # (moto's backends are per process: another module's local cloud may have left its own resources)
    assert f"platform-{STAGE}" not in boto3.client("dynamodb", **aws).list_tables()["TableNames"]
    left = {s["Name"] for s in boto3.client("secretsmanager", **aws).list_secrets()["SecretList"]}
    assert not left & {f"{s['name']}-{STAGE}" for s in DECLARATION["secrets"]}


# --------------------------------------------------------------------------------------------------
# checkov
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov() -> Path:
    """checkov in a virtualenv of its own (its dependencies pin versions the project's do not)."""
    venv = REPO / ".venv" / "checkov"
    binary = venv / "bin" / "checkov"
    stamp = venv / f".installed-{package.package_hash(CHECKOV_REQUIREMENTS).replace('/', '_')[:12]}"
    if not stamp.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=TIMEOUT_SECONDS)
        install = subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(CHECKOV_REQUIREMENTS),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        if install.returncode != 0:
            _missing(f"checkov could not be installed from PyPI: {install.stderr[-2000:]}")
        stamp.touch()
    return binary


@pytest.mark.slow
def test_checkov_finds_nothing_unexplained(checkov: Path) -> None:
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(REPO / "infra"),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for report in reports
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    passed = sum(report.get("summary", {}).get("passed", 0) for report in reports)
    assert passed > 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_every_skipped_check_is_named_with_its_reason() -> None:
    skips = []
    for path in sorted((REPO / "infra").rglob("*.tf")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "checkov:skip" in line:
                skips.append((path, number, line))
                assert re.search(r"#checkov:skip=CKV2?_[A-Z0-9]+_\d+:\S.{20,}", line), (
                    f"{path}:{number}: no reason: {line}"
                )
    assert skips, "no skipped checks found: the pattern above no longer matches the files"
