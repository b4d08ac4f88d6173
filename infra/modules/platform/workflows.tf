# Step Functions: every state machine of the declaration, its definition
# (statemachines/*.asl.json) rendered with templatefile from its placeholders
# exactly as the local cloud renders it (localcloud/declaration.py), with a role
# naming the functions, queues, table or bus it reaches. EventBridge Scheduler:
# every schedule, with a role of its own and a dead-letter queue.

locals {
  state_machines = { for machine in try(local.resources.state_machines, []) : machine.name => machine }

  # Placeholder values: {"function": name} the function's ARN, {"queue": name}
  # the queue's URL, {"table": true} the table's name, {"bus": true} the bus's
  # name, {"value": text} the text.
  placeholder_values = {
    for name, machine in local.state_machines : name => {
      for key, spec in try(machine.placeholders, {}) : key => (
        can(spec.function) ? local.function_arns[spec.function] :
        can(spec.queue) ? "https://sqs.${local.region}.amazonaws.com/${local.account_id}/${spec.queue}-${var.stage}" :
        try(spec.table, false) ? "${local.table.name}-${var.stage}" :
        try(spec.bus, false) ? "${local.resources.event_bus.name}-${var.stage}" :
        tostring(spec.value)
      )
    }
  }

  machine_statements = {
    for name, machine in local.state_machines : name => concat(
      [for spec in values(try(machine.placeholders, {})) : {
        Sid      = "Invoke${replace(title(replace(spec.function, "-", " ")), " ", "")}"
        Action   = ["lambda:InvokeFunction"]
        Resource = [local.function_arns[spec.function], "${local.function_arns[spec.function]}:*"]
      } if can(spec.function)],
      [for spec in values(try(machine.placeholders, {})) : {
        Sid      = "Send${replace(title(replace(spec.queue, "-", " ")), " ", "")}"
        Action   = ["sqs:SendMessage"]
        Resource = [local.queue_arns[spec.queue]]
      } if can(spec.queue)],
      [for statement in [{
        Sid      = "Table"
        Action   = local.table_actions
        Resource = [local.table_arn, "${local.table_arn}/index/*"]
      }] : statement if anytrue([for spec in values(try(machine.placeholders, {})) : try(spec.table, false)])],
      [for statement in [{
        Sid      = "Bus"
        Action   = ["events:PutEvents"]
        Resource = [local.bus_arn]
      }] : statement if anytrue([for spec in values(try(machine.placeholders, {})) : try(spec.bus, false)])],
      [{
        # Execution logs go through CloudWatch Logs' log delivery, whose
        # actions take no resource (Step Functions' developer guide, "IAM
        # policies for logging to CloudWatch Logs").
        Sid = "LogDelivery"
        Action = [
          "logs:CreateLogDelivery",
          "logs:DeleteLogDelivery",
          "logs:DescribeLogGroups",
          "logs:DescribeResourcePolicies",
          "logs:GetLogDelivery",
          "logs:ListLogDeliveries",
          "logs:PutResourcePolicy",
          "logs:UpdateLogDelivery",
        ]
        Resource = ["*"]
      }],
    )
  }

  # A schedule of a function this stage does not deploy (a local-only one)
  # is left out, as is such a function's queue mapping.
  schedules = {
    for schedule in try(local.resources.schedules, []) : schedule.name => schedule
    if !can(schedule.target.function) || contains(keys(local.functions), try(schedule.target.function, ""))
  }

  scheduled_functions = distinct([for schedule in values(local.schedules) : schedule.target.function if can(schedule.target.function)])
  scheduled_machines  = distinct([for schedule in values(local.schedules) : schedule.target.state_machine if can(schedule.target.state_machine)])
}

################################################################################
# State machines
################################################################################

resource "aws_iam_role" "state_machine" {
  for_each = local.state_machines

  name = "${each.key}-sfn-${var.stage}-${local.region}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "state_machine" {
  for_each = local.state_machines

  name = "uses"
  role = aws_iam_role.state_machine[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [for statement in local.machine_statements[each.key] : merge({ Effect = "Allow" }, statement)]
  })
}

resource "aws_cloudwatch_log_group" "state_machine" {
  #checkov:skip=CKV_AWS_158:encrypted by CloudWatch Logs' own key; the logs carry no secrets (chalicelib/logs.py masks them)
  #checkov:skip=CKV_AWS_338:retention is a variable (log_retention_days, 30 by default): a year of debug logs is a cost without a use
  for_each = local.state_machines

  name              = "/aws/vendedlogs/states/${each.key}-${var.stage}"
  retention_in_days = var.log_retention_days

  tags = var.tags
}

resource "aws_sfn_state_machine" "this" {
  #checkov:skip=CKV_AWS_284:the platform sends no traces (POWERTOOLS_TRACE_DISABLED)
  #checkov:skip=CKV_AWS_285:errors only: execution data names namespaces and members, and full history logging costs per state transition
  for_each = local.state_machines

  name = "${each.key}-${var.stage}"
  # Standard unless the declaration says otherwise: exactly-once steps, long
  # waits and task tokens (Express allows none of these).
  type       = try(each.value.type, "STANDARD")
  role_arn   = aws_iam_role.state_machine[each.key].arn
  definition = templatefile("${local.repository_root}/${each.value.definition}", local.placeholder_values[each.key])

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine[each.key].arn}:*"
    include_execution_data = false # inputs name namespaces and members; errors are enough
    level                  = "ERROR"
  }

  tracing_configuration {
    enabled = false # POWERTOOLS_TRACE_DISABLED: the platform sends no traces
  }

  tags = var.tags

  # The tasks' functions exist before a definition naming them is validated.
  depends_on = [aws_lambda_function.this, aws_iam_role_policy.state_machine]
}

################################################################################
# Schedules (EventBridge Scheduler)
################################################################################

resource "aws_sqs_queue" "schedules_dlq" {
  name                      = "schedules-dlq-${var.stage}"
  message_retention_seconds = 1209600 # 14 days, like the queues' dead-letter queues
  sqs_managed_sse_enabled   = true

  tags = var.tags
}

resource "aws_iam_role" "scheduler" {
  name = "platform-scheduler-${var.stage}-${local.region}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy" "scheduler" {
  name = "targets"
  role = aws_iam_role.scheduler.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [for statement in [{
        Sid      = "InvokeFunctions"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [for function in local.scheduled_functions : local.function_arns[function]]
      }] : statement if length(local.scheduled_functions) > 0],
      [for statement in [{
        Sid      = "StartExecutions"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = [for machine in local.scheduled_machines : local.state_machine_arns[machine]]
      }] : statement if length(local.scheduled_machines) > 0],
      [{
        Sid      = "DeadLetters"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.schedules_dlq.arn]
      }],
    )
  })
}

resource "aws_scheduler_schedule" "this" {
  #checkov:skip=CKV_AWS_297:a schedule's input is a fixed, public JSON object (a scheduled time at most)
  for_each = local.schedules

  name                         = "${each.key}-${var.stage}"
  schedule_expression          = each.value.expression
  schedule_expression_timezone = try(each.value.timezone, "UTC")

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn = (
      can(each.value.target.function)
      ? aws_lambda_function.this[each.value.target.function].arn
      : aws_sfn_state_machine.this[each.value.target.state_machine].arn
    )
    role_arn = aws_iam_role.scheduler.arn
    # <aws.scheduler.scheduled-time> and the like are filled by Scheduler.
    input = jsonencode(try(each.value.target.input, {}))

    dead_letter_config {
      arn = aws_sqs_queue.schedules_dlq.arn
    }

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }
}
