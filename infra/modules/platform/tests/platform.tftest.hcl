# Offline tests of the module's logic (Terraform >= 1.7): the AWS provider is
# mocked, so nothing is called and no credentials are needed. Run with
#   terraform -chdir=infra/modules/platform init -backend=false
#   terraform -chdir=infra/modules/platform test

# The mock's random strings are not ARNs, which the provider's own validation
# rejects where one resource takes another's ARN: give every such type a
# well-formed default, and the data sources a fixed account and region.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/mock" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mock", invoke_arn = "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:mock/invocations" }
  }
  mock_resource "aws_lambda_layer_version" {
    defaults = { arn = "arn:aws:lambda:eu-west-1:123456789012:layer:platform:1" }
  }
  mock_resource "aws_sfn_state_machine" {
    defaults = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:mock" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mock", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/mock" }
  }
  mock_resource "aws_kms_key" {
    defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/mock" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mock-abcdef" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:mock" }
  }
  mock_resource "aws_sns_topic" {
    defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:mock" }
  }
  mock_resource "aws_cloudwatch_event_rule" {
    defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/mock" }
  }
  mock_resource "aws_api_gateway_rest_api" {
    defaults = { id = "mockapi", execution_arn = "arn:aws:execute-api:eu-west-1:123456789012:mockapi" }
  }
}

# What `make package` would pass: a package per declared function (of the
# declaration and of the fixture), and the API's.
variables {
  function_packages = merge(
    { for function in jsondecode(file("../../resources.json")).functions : function.name => { path = "${function.name}.zip", hash = "x" } },
    { for function in jsondecode(file("tests/fixtures/resources-with-queues.json")).functions : function.name => { path = "${function.name}.zip", hash = "x" } },
  )
  layer_package       = { path = "layer.zip", hash = "x" }
  api_package         = { path = "api.zip", hash = "x" }
  api_definition_file = "tests/fixtures/api-swagger.json"
  repository_root     = "../../.."
}

run "prod_table_from_the_shared_declaration" {
  command = plan

  variables {
    stage          = "prod"
    resources_file = "../../resources.json"
  }

  assert {
    condition     = aws_dynamodb_table.this.name == "platform-prod"
    error_message = "The table must be named <declared name>-<stage>."
  }

  assert {
    condition     = aws_dynamodb_table.this.deletion_protection_enabled
    error_message = "Deletion protection must be on in prod."
  }

  assert {
    condition     = aws_dynamodb_table.this.point_in_time_recovery[0].enabled
    error_message = "Point-in-time recovery must be on in prod."
  }

  assert {
    condition     = aws_dynamodb_table.this.server_side_encryption[0].enabled
    error_message = "Server-side encryption must be on."
  }

  assert {
    condition     = aws_dynamodb_table.this.stream_enabled && aws_dynamodb_table.this.stream_view_type == "NEW_AND_OLD_IMAGES"
    error_message = "The stream must be on with the declared view type."
  }

  assert {
    condition     = aws_dynamodb_table.this.ttl[0].attribute_name == "expires_at" && aws_dynamodb_table.this.ttl[0].enabled
    error_message = "TTL must be on the declared attribute."
  }

  assert {
    condition     = toset([for gsi in aws_dynamodb_table.this.global_secondary_index : gsi.name]) == toset(["GSI1", "GSI2"])
    error_message = "Every declared GSI must be created."
  }

  assert {
    condition     = aws_cloudwatch_event_bus.this.name == "platform-prod"
    error_message = "The bus must be named <declared name>-<stage>."
  }

  assert {
    condition     = length(aws_sqs_queue.this) == length(jsondecode(file("${path.module}/../../resources.json")).queues) && length(aws_sqs_queue.dlq) == length(aws_sqs_queue.this)
    error_message = "Every declared queue, with its dead-letter queue, must be created."
  }

  assert {
    condition     = aws_sqs_queue.this["github-events"].max_message_size == 262144
    error_message = "A queue's declared max_message_size must be set."
  }

  assert {
    condition     = startswith(aws_s3_bucket.this["queue-payloads"].bucket, "queue-payloads-prod-") && aws_s3_bucket_lifecycle_configuration.this["queue-payloads"].rule[0].expiration[0].days == 14
    error_message = "Every declared bucket must be created, named <declared name>-<stage>-<account>, with its expiry."
  }

  assert {
    condition     = aws_s3_bucket_public_access_block.this["queue-payloads"].block_public_acls && aws_s3_bucket_public_access_block.this["queue-payloads"].restrict_public_buckets
    error_message = "Buckets must block public access."
  }
}

run "dev_table_can_be_deleted" {
  command = plan

  variables {
    stage          = "dev"
    resources_file = "../../resources.json"
  }

  assert {
    condition     = aws_dynamodb_table.this.name == "platform-dev"
    error_message = "The table must be named <declared name>-<stage>."
  }

  assert {
    condition     = !aws_dynamodb_table.this.deletion_protection_enabled
    error_message = "Deletion protection is for prod only."
  }

  assert {
    condition     = aws_dynamodb_table.this.point_in_time_recovery[0].enabled
    error_message = "Point-in-time recovery is declared for dev too."
  }
}

run "queues_and_rules" {
  # apply (against the mock) so that ARNs and URLs are known to the assertions.
  command = apply

  variables {
    stage          = "dev"
    resources_file = "tests/fixtures/resources-with-queues.json"
  }

  # The mock's random strings are not ARNs, which the provider's own
  # validation rejects; give every queue a distinct, well-formed one.

  override_resource {
    target = aws_sqs_queue.this["alerts"]
    values = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:alerts-dev"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/alerts-dev"
    }
  }

  override_resource {
    target = aws_sqs_queue.this["projections"]
    values = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:projections-dev"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/projections-dev"
    }
  }

  override_resource {
    target = aws_sqs_queue.dlq["alerts"]
    values = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:alerts-dlq-dev"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/alerts-dlq-dev"
    }
  }

  override_resource {
    target = aws_sqs_queue.dlq["projections"]
    values = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:projections-dlq-dev"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/projections-dlq-dev"
    }
  }

  assert {
    condition     = toset(keys(aws_sqs_queue.this)) == toset(["alerts", "projections"])
    error_message = "One queue per declared queue."
  }

  assert {
    condition     = aws_sqs_queue.this["alerts"].name == "alerts-dev" && aws_sqs_queue.dlq["alerts"].name == "alerts-dlq-dev"
    error_message = "Queues are <name>-<stage>, dead-letter queues <name>-dlq-<stage>."
  }

  assert {
    condition     = aws_sqs_queue.this["alerts"].visibility_timeout_seconds == 60
    error_message = "The declared visibility timeout must be used."
  }

  assert {
    condition     = jsondecode(aws_sqs_queue.this["alerts"].redrive_policy).deadLetterTargetArn == aws_sqs_queue.dlq["alerts"].arn
    error_message = "A queue must redrive to its own dead-letter queue."
  }

  assert {
    condition     = jsondecode(aws_sqs_queue.this["projections"].redrive_policy).maxReceiveCount == 3
    error_message = "The declared max receive count must be used."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.this["budget-exceeded-to-alerts"].event_bus_name == "platform-dev"
    error_message = "Rules belong to the platform bus."
  }

  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.this["budget-exceeded-to-alerts"].event_pattern)["detail-type"] == ["budget.exceeded"]
    error_message = "The declared event pattern must be used."
  }

  assert {
    condition     = aws_cloudwatch_event_target.this["deployment-finished-to-alerts"].arn == aws_sqs_queue.this["alerts"].arn
    error_message = "A rule must target its declared queue."
  }

  assert {
    condition     = toset(keys(aws_sqs_queue_policy.this)) == toset(["alerts"])
    error_message = "Only queues that rules target get a policy for EventBridge."
  }

  assert {
    condition = (
      jsondecode(aws_sqs_queue_policy.this["alerts"].policy).Statement[0].Principal.Service == "events.amazonaws.com"
      && length(jsondecode(aws_sqs_queue_policy.this["alerts"].policy).Statement[0].Condition.ArnEquals["aws:SourceArn"]) == 2
    )
    error_message = "The queue policy must let EventBridge send from every rule that targets the queue."
  }
}

run "functions_that_send_mail_and_sms_or_answer_task_tokens" {
  command = plan

  variables {
    stage          = "dev"
    resources_file = "tests/fixtures/resources-with-queues.json"
    sender_email   = "alerts@example.com"
  }

  assert {
    condition     = aws_lambda_function.this["mailer"].environment[0].variables.PLATFORM_EMAIL_FROM == "alerts@example.com"
    error_message = "A function whose uses say email must be told the sender (PLATFORM_EMAIL_FROM)."
  }

  assert {
    condition     = !contains(keys(aws_lambda_function.this["outbox-relay"].environment[0].variables), "PLATFORM_EMAIL_FROM")
    error_message = "Only the functions whose uses say email are told the sender."
  }

  assert {
    condition = (
      toset([for statement in jsondecode(aws_iam_role_policy.principal["mailer"].policy).Statement : statement.Sid]) == toset(["Logs", "Email", "Sms"])
    )
    error_message = "The mailer's role must allow its logs, SES and SMS, and (table: false) nothing else."
  }

  assert {
    condition = (
      [for statement in jsondecode(aws_iam_role_policy.principal["approver"].policy).Statement : statement.Action if statement.Sid == "TaskTokens"]
      == [["states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess"]]
    )
    error_message = "A function whose uses say task_tokens may answer a waitForTaskToken step."
  }

  assert {
    condition     = !contains(keys(aws_scheduler_schedule.this), "seed-nightly") && length(aws_scheduler_schedule.this) == length(jsondecode(file("tests/fixtures/resources-with-queues.json")).schedules) - 1
    error_message = "A schedule of a function this stage does not deploy is left out, the others are created."
  }
}

run "each_function_is_told_where_exactly_what_it_uses_is" {
  command = plan

  variables {
    stage          = "dev"
    resources_file = "../../resources.json"
  }

  # The names chalicelib/adapters/aws/workflows.py resolves (the local cloud
  # sets the same ones), for the entry's "uses" and nothing more.
  assert {
    condition = alltrue([
      for function in jsondecode(file("../../resources.json")).functions : (
        toset([for key in keys(aws_lambda_function.this[function.name].environment[0].variables) : key if can(regex("^PLATFORM_(SFN|QUEUE|BUCKET)_", key))])
        == toset(concat(
          [for machine in try(function.uses.state_machines, []) : "PLATFORM_SFN_${upper(replace(machine, "-", "_"))}_ARN"],
          [for queue in try(function.uses.queues, []) : "PLATFORM_QUEUE_${upper(replace(queue, "-", "_"))}_URL"],
          [for bucket in keys(try(function.uses.buckets, {})) : "PLATFORM_BUCKET_${upper(replace(bucket, "-", "_"))}_NAME"],
        ))
        && contains(keys(aws_lambda_function.this[function.name].environment[0].variables), "PLATFORM_SECRETS_ID") == (length(try(function.uses.secrets, [])) > 0)
        && contains(keys(aws_lambda_function.this[function.name].environment[0].variables), "PLATFORM_KMS_KEY_ID") == try(function.uses.kms, false)
        && contains(keys(aws_lambda_function.this[function.name].environment[0].variables), "PLATFORM_EMAIL_FROM") == try(function.uses.email, false)
      ) if contains(try(function.stages, ["dev"]), "dev")
    ])
    error_message = "A function's environment must name exactly the state machines, queues, buckets, secrets, key and sender its \"uses\" list."
  }
}
