# The API: the Chalice app (build/api.zip, handler app.app, running on the
# shared layer) behind an API Gateway REST API whose definition is Chalice's
# Swagger of the routes (build/api-swagger.json: one resource per route, which
# Chalice dispatches on), with the gateway responses of docs/api-gateway.md in
# the same body: answers that never reach the app (an unknown path, a body over
# API Gateway's limit, throttling, a failing integration) in the project's
# error format. They live in the body rather than as aws_api_gateway_gateway_response
# resources, because a body import in the default "overwrite" mode drops
# responses created beside it (docs/api-gateway.md).

locals {
  api_stage_name = local.chalice_stage.api_gateway_stage

  # response type => status and the project's error code. A null message keeps
  # API Gateway's own ($context.error.messageString, a quoted JSON string
  # already); a null status keeps the type's own (DEFAULT_4XX, DEFAULT_5XX).
  gateway_responses = {
    MISSING_AUTHENTICATION_TOKEN = { status = 404, code = "not_found", message = "no such route" }
    UNAUTHORIZED                 = { status = 401, code = "unauthenticated", message = "no valid credential" }
    ACCESS_DENIED                = { status = 403, code = "forbidden", message = "forbidden" }
    REQUEST_TOO_LARGE            = { status = 413, code = "payload_too_large", message = null }
    UNSUPPORTED_MEDIA_TYPE       = { status = 415, code = "unsupported_media_type", message = null }
    THROTTLED                    = { status = 429, code = "rate_limited", message = null }
    QUOTA_EXCEEDED               = { status = 429, code = "rate_limited", message = null }
    INTEGRATION_TIMEOUT          = { status = 504, code = "gateway_timeout", message = null }
    DEFAULT_4XX                  = { status = null, code = "request_rejected", message = null }
    DEFAULT_5XX                  = { status = null, code = "internal_error", message = "an internal error occurred" }
  }

  # Gateway response templates are not VTL: only $context variables are
  # substituted. $context.error.messageString comes quoted already;
  # $context.requestId and $context.error.responseType do not.
  gateway_response_definitions = {
    for type, response in local.gateway_responses : type => merge(
      response.status == null ? {} : { statusCode = response.status },
      {
        responseTemplates = {
          "application/json" = format(
            "{\"error\": {\"code\": %q, \"message\": %s, \"details\": {\"request_id\": \"$context.requestId\", \"response_type\": \"$context.error.responseType\"}}}",
            response.code,
            response.message == null ? "$context.error.messageString" : jsonencode(response.message),
          )
        }
      },
      type == "UNAUTHORIZED" ? {
        responseParameters = { "gatewayresponse.header.WWW-Authenticate" = "'Bearer realm=\"platform\"'" }
      } : {},
    )
  }

  # Built from the function's name, not its resource: the function's own
  # environment names the API's address, and that must not be a cycle.
  api_invoke_arn = "arn:${local.partition}:apigateway:${local.region}:lambda:path/2015-03-31/functions/${local.function_arns[local.api.name]}/invocations"

  api_body = jsonencode(merge(
    jsondecode(replace(file(var.api_definition_file), "@@API_HANDLER_INVOKE_ARN@@", local.api_invoke_arn)),
    { "x-amazon-apigateway-gateway-responses" = local.gateway_response_definitions },
  ))
}

################################################################################
# The Chalice app
################################################################################

resource "aws_lambda_function" "api" {
  #checkov:skip=CKV_AWS_115:no reserved concurrency in a fresh account (its concurrency may be as low as 10); the API's comes from .chalice/config.json per stage
  #checkov:skip=CKV_AWS_116:no asynchronous invocation needs one: tasks are retried and caught by their state machine, consumers dead-letter through their queue's redrive, schedules through the scheduler's dead-letter queue
  #checkov:skip=CKV_AWS_117:no private resources to reach: the functions call AWS APIs, GitHub, Stripe and the clusters' public gateways
  #checkov:skip=CKV_AWS_173:the environment holds names and ARNs only; secrets are in Secrets Manager
  #checkov:skip=CKV_AWS_272:the zips are built and hashed by `make package` and deployed by this configuration only
  #checkov:skip=CKV_AWS_50:the platform sends no traces (POWERTOOLS_TRACE_DISABLED)
  function_name                  = local.function_names[local.api.name]
  role                           = aws_iam_role.principal[local.api.name].arn
  runtime                        = "python3.11"
  architectures                  = ["x86_64"]
  handler                        = local.api.handler
  filename                       = var.api_package.path
  source_code_hash               = var.api_package.hash
  layers                         = [aws_lambda_layer_version.this.arn]
  memory_size                    = try(local.chalice_stage.lambda_memory_size, 128)
  timeout                        = try(local.chalice_stage.lambda_timeout, 60)
  reserved_concurrent_executions = try(local.chalice_stage.reserved_concurrency, -1)

  environment {
    variables = local.environment[local.api.name]
  }

  logging_config {
    log_format = "Text" # the app writes JSON lines itself (Powertools Logger)
    log_group  = aws_cloudwatch_log_group.function[local.api.name].name
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.api.name == local.chalice.app_name && !contains(keys(local.functions), local.api.name)
      error_message = "The declaration's api.name must be .chalice/config.json's app_name, and no function's name."
    }
  }

  depends_on = [aws_iam_role_policy.principal]
}

################################################################################
# The REST API, its deployment and stage
################################################################################

resource "aws_api_gateway_rest_api" "this" {
  name = local.function_names[local.api.name]
  body = local.api_body

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id

  # The body holds the routes and the gateway responses: any change redeploys.
  triggers = {
    redeployment = sha1(local.api_body)
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:encrypted by CloudWatch Logs' own key; the logs carry no secrets (chalicelib/logs.py masks them)
  #checkov:skip=CKV_AWS_338:retention is a variable (log_retention_days, 30 by default): a year of debug logs is a cost without a use
  name              = "/aws/apigateway/${local.function_names[local.api.name]}/access"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV2_AWS_29:no WAF: each request is authenticated by the app, throttled per stage; a web ACL costs $5/month plus per request (add one per account if needed)
  #checkov:skip=CKV2_AWS_51:clients are people and CLIs with platform tokens, not holders of client certificates
  #checkov:skip=CKV_AWS_120:answers depend on the caller's token and current membership: none may be cached
  #checkov:skip=CKV_AWS_73:the platform sends no traces (POWERTOOLS_TRACE_DISABLED)
  rest_api_id   = aws_api_gateway_rest_api.this.id
  deployment_id = aws_api_gateway_deployment.this.id
  stage_name    = local.api_stage_name

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      request_id     = "$context.requestId"
      time           = "$context.requestTime"
      method         = "$context.httpMethod"
      path           = "$context.resourcePath"
      status         = "$context.status"
      latency_ms     = "$context.responseLatency"
      response_type  = "$context.error.responseType"
      integration_ms = "$context.integrationLatency"
    })
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:answers depend on the caller's token and current membership: none may be cached
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "ERROR"
    data_trace_enabled     = false # bodies carry tokens and secrets
    throttling_rate_limit  = var.api_throttle.rate_limit
    throttling_burst_limit = var.api_throttle.burst_limit
  }
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGateway"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*"
}

################################################################################
# API Gateway's account-wide CloudWatch role (access and execution logs)
################################################################################

resource "aws_iam_role" "api_gateway_logs" {
  count = var.manage_account_settings ? 1 : 0

  name = "platform-apigateway-logs-${var.stage}-${local.region}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "apigateway.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "api_gateway_logs" {
  count = var.manage_account_settings ? 1 : 0

  role       = aws_iam_role.api_gateway_logs[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_account_settings ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_logs[0].arn

  depends_on = [aws_iam_role_policy_attachment.api_gateway_logs]
}

################################################################################
# Optional custom domain
################################################################################

resource "aws_api_gateway_domain_name" "this" {
  count = var.domain_name == null ? 0 : 1

  domain_name              = var.domain_name
  regional_certificate_arn = var.certificate_arn
  security_policy          = "TLS_1_2"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.certificate_arn != null
      error_message = "A custom domain needs certificate_arn (an ACM certificate in the API's region)."
    }
  }
}

resource "aws_api_gateway_base_path_mapping" "this" {
  count = var.domain_name == null ? 0 : 1

  api_id      = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  domain_name = aws_api_gateway_domain_name.this[0].domain_name
}

resource "aws_route53_record" "api" {
  count = var.domain_name != null && var.zone_id != null ? 1 : 0

  zone_id = var.zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_api_gateway_domain_name.this[0].regional_domain_name
    zone_id                = aws_api_gateway_domain_name.this[0].regional_zone_id
    evaluate_target_health = false
  }
}
