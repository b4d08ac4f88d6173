# Lambda: one function per entry of the declaration's "functions" (those of
# this stage), the Chalice app (the declaration's "api", see api.tf), the
# shared layer, the queues' event source mappings and a log group each.
# What each function may touch is derived from its "uses" in iam.tf, and the
# same "uses" give it the environment naming those resources.

locals {
  # Functions whose "stages" exclude this one (local-only seeding, the local
  # runtime) are not deployed.
  functions = {
    for function in local.resources.functions : function.name => function
    if contains(try(function.stages, [var.stage]), var.stage)
  }

  api = local.resources.api

  # .chalice/config.json: the environment every function shares, and the
  # API's memory, timeout and reserved concurrency of this stage.
  chalice       = jsondecode(file("${local.repository_root}/.chalice/config.json"))
  chalice_stage = local.chalice.stages[var.stage]

  # Everything that runs with a role of its own: the functions and the API.
  principals = merge(local.functions, { (local.api.name) = local.api })

  function_names = { for name in keys(local.principals) : name => "${name}-${var.stage}" }
  log_group_names = {
    for name, function_name in local.function_names : name => "/aws/lambda/${function_name}"
  }

  secret_names = { for secret in try(local.resources.secrets, []) : secret.name => secret }
  kms_alias    = "alias/${local.resources.kms_key.alias}-${var.stage}"

  public_url = (
    var.domain_name != null
    ? "https://${var.domain_name}"
    : "https://${aws_api_gateway_rest_api.this.id}.execute-api.${local.region}.amazonaws.com/${local.api_stage_name}"
  )

  shared_environment = merge(
    local.chalice.environment_variables,
    try(local.chalice_stage.environment_variables, {}),
    {
      PLATFORM_STAGE      = var.stage
      PLATFORM_TABLE_NAME = aws_dynamodb_table.this.name
      PLATFORM_EVENT_BUS  = aws_cloudwatch_event_bus.this.name
      PLATFORM_ADMINS     = join(",", var.platform_admins)
      PLATFORM_PUBLIC_URL = local.public_url
      GITHUB_APP_ID       = var.github_app_id
      GITHUB_CLIENT_ID    = var.github_client_id
    },
  )

  # The names chalicelib/adapters/aws/workflows.py resolves, for exactly the
  # resources the entry uses.
  environment = {
    for name, principal in local.principals : name => merge(
      local.shared_environment,
      {
        for machine in try(principal.uses.state_machines, []) :
        "PLATFORM_SFN_${upper(replace(machine, "-", "_"))}_ARN" => local.state_machine_arns[machine]
      },
      {
        for queue in try(principal.uses.queues, []) :
        "PLATFORM_QUEUE_${upper(replace(queue, "-", "_"))}_URL" => aws_sqs_queue.this[queue].url
      },
      {
        for bucket in keys(try(principal.uses.buckets, {})) :
        "PLATFORM_BUCKET_${upper(replace(bucket, "-", "_"))}_NAME" => aws_s3_bucket.this[bucket].bucket
      },
      length(try(principal.uses.secrets, [])) == 0 ? {} : {
        PLATFORM_SECRETS_ID = join(",", [for secret in principal.uses.secrets : aws_secretsmanager_secret.this[secret].arn])
      },
      try(principal.uses.kms, false) ? { PLATFORM_KMS_KEY_ID = local.kms_alias } : {},
      # The sender every mail goes from (the SES identity; the local cloud keeps the default).
      try(principal.uses.email, false) ? { PLATFORM_EMAIL_FROM = aws_ses_email_identity.this.email } : {},
    )
  }

  # Queue consumers: the queues whose "consumer" names a function of this stage.
  consumed_queues = {
    for name, queue in local.queues : name => queue
    if contains(keys(local.functions), try(queue.consumer.function, ""))
  }
}

################################################################################
# The shared layer: pinned dependencies and chalicelib (build/layer.zip),
# uploaded through S3: PublishLayerVersion takes at most 50 MB inline, while a
# layer from S3 is limited only by Lambda's 250 MB unzipped (which
# `make package` checks).
################################################################################

resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:written by this configuration only (its apply is the record); access logs would need a second bucket
  #checkov:skip=CKV_AWS_21:each object is the build of one apply, rebuilt by `make package` from the repository: nothing to restore
  #checkov:skip=CKV_AWS_144:the layer is published in this region from here; another region is another apply of the same build
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) at rest: the layer holds public packages and the platform's code, no secrets
  #checkov:skip=CKV2_AWS_61:one object per key, overwritten by each apply: nothing accumulates to expire
  #checkov:skip=CKV2_AWS_62:nothing reacts to these objects: Terraform publishes the layer from them itself
  bucket        = "platform-artifacts-${var.stage}-${local.account_id}"
  force_destroy = true # rebuilt by `make package`: destroy takes it with its objects

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_object" "layer" {
  bucket      = aws_s3_bucket.artifacts.id
  key         = "layer.zip"
  source      = var.layer_package.path
  source_hash = var.layer_package.hash # a new build uploads again

  tags = var.tags

  depends_on = [aws_s3_bucket_server_side_encryption_configuration.artifacts]
}

resource "aws_lambda_layer_version" "this" {
  layer_name          = "platform-${var.stage}"
  s3_bucket           = aws_s3_object.layer.bucket
  s3_key              = aws_s3_object.layer.key
  source_code_hash    = var.layer_package.hash # a new build publishes a new version
  compatible_runtimes = ["python3.11"]
}

################################################################################
# Log groups: created before the functions, so that retention applies
################################################################################

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:encrypted by CloudWatch Logs' own key; the logs carry no secrets (chalicelib/logs.py masks them)
  #checkov:skip=CKV_AWS_338:retention is a variable (log_retention_days, 30 by default): a year of debug logs is a cost without a use
  for_each = local.log_group_names

  name              = each.value
  retention_in_days = var.log_retention_days

  tags = var.tags
}

################################################################################
# The functions of the declaration
################################################################################

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_115:no reserved concurrency in a fresh account (its concurrency may be as low as 10); the API's comes from .chalice/config.json per stage
  #checkov:skip=CKV_AWS_116:no asynchronous invocation needs one: tasks are retried and caught by their state machine, consumers dead-letter through their queue's redrive, schedules through the scheduler's dead-letter queue
  #checkov:skip=CKV_AWS_117:no private resources to reach: the functions call AWS APIs, GitHub, Stripe and the clusters' public gateways
  #checkov:skip=CKV_AWS_173:the environment holds names and ARNs only; secrets are in Secrets Manager
  #checkov:skip=CKV_AWS_272:the zips are built and hashed by `make package` and deployed by this configuration only
  #checkov:skip=CKV_AWS_50:the platform sends no traces (POWERTOOLS_TRACE_DISABLED)
  for_each = local.functions

  function_name    = local.function_names[each.key]
  role             = aws_iam_role.principal[each.key].arn
  runtime          = "python3.11"
  architectures    = ["x86_64"]
  handler          = each.value.handler
  filename         = try(var.function_packages[each.key].path, null)
  source_code_hash = try(var.function_packages[each.key].hash, null)
  layers           = [aws_lambda_layer_version.this.arn]
  memory_size      = each.value.memory
  timeout          = each.value.timeout

  environment {
    variables = local.environment[each.key]
  }

  logging_config {
    log_format = "Text" # the handlers write JSON lines themselves (Powertools Logger)
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = contains(keys(var.function_packages), each.key)
      error_message = "No package for function ${each.key}: run `make package` and pass build/packages.tfvars.json."
    }
  }

  depends_on = [aws_iam_role_policy.principal]
}

################################################################################
# Queues to their consumers, reporting partial batch failures
################################################################################

resource "aws_lambda_event_source_mapping" "this" {
  for_each = local.consumed_queues

  event_source_arn        = aws_sqs_queue.this[each.key].arn
  function_name           = aws_lambda_function.this[each.value.consumer.function].arn
  batch_size              = each.value.consumer.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  lifecycle {
    precondition {
      condition     = each.value.visibility_timeout >= local.functions[each.value.consumer.function].timeout
      error_message = "Queue ${each.key}: its visibility_timeout must be at least its consumer's timeout, or a message in work is delivered twice."
    }
  }
}
