# Alarms to one SNS topic (encrypted with the platform key, optionally mailed
# to alarm_email): a message in any dead-letter queue, a failed, timed-out or
# aborted execution, a throttled function, and 5xx answers of the API.

resource "aws_sns_topic" "alarms" {
  name              = "platform-alarms-${var.stage}"
  kms_master_key_id = aws_kms_key.this.arn

  tags = var.tags
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  dead_letter_queues = merge(
    { for name, queue in aws_sqs_queue.dlq : name => queue.name },
    { schedules = aws_sqs_queue.schedules_dlq.name },
  )
  alarm_actions = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = local.dead_letter_queues

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "Messages wait in ${each.value}: their handling failed every retry. Read them, fix the cause, redrive them (infra/README.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  for_each = {
    for pair in setproduct(keys(local.state_machines), ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]) :
    "${pair[0]}-${pair[1]}" => { machine = pair[0], metric = pair[1] }
  }

  alarm_name          = "${each.value.machine}-${var.stage}-${lower(trimprefix(each.value.metric, "Executions"))}"
  alarm_description   = "An execution of ${each.value.machine}-${var.stage} ended ${lower(trimprefix(each.value.metric, "Executions"))}."
  namespace           = "AWS/States"
  metric_name         = each.value.metric
  dimensions          = { StateMachineArn = aws_sfn_state_machine.this[each.value.machine].arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each = local.function_names

  alarm_name          = "${each.value}-throttled"
  alarm_description   = "Invocations of ${each.value} were throttled (the account's or the function's concurrency)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions

  tags = var.tags

  depends_on = [aws_lambda_function.this, aws_lambda_function.api]
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${aws_api_gateway_rest_api.this.name}-5xx"
  alarm_description   = "The API answered 5xx (the app's own or API Gateway's) in 2 of the last 3 five-minute periods."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5XXError"
  dimensions          = { ApiName = aws_api_gateway_rest_api.this.name, Stage = aws_api_gateway_stage.this.stage_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  tags = var.tags
}
