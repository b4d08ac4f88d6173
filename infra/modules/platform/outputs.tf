output "table_name" {
  description = "Name of the platform's DynamoDB table."
  value       = aws_dynamodb_table.this.name
}

output "table_arn" {
  description = "ARN of the platform's DynamoDB table."
  value       = aws_dynamodb_table.this.arn
}

output "table_stream_arn" {
  description = "ARN of the table's DynamoDB stream."
  value       = aws_dynamodb_table.this.stream_arn
}

output "event_bus_name" {
  description = "Name of the platform's EventBridge bus."
  value       = aws_cloudwatch_event_bus.this.name
}

output "event_bus_arn" {
  description = "ARN of the platform's EventBridge bus."
  value       = aws_cloudwatch_event_bus.this.arn
}

output "queue_urls" {
  description = "URL of each consumer queue, keyed by its declared name."
  value       = { for name, queue in aws_sqs_queue.this : name => queue.url }
}

output "queue_arns" {
  description = "ARN of each consumer queue, keyed by its declared name."
  value       = { for name, queue in aws_sqs_queue.this : name => queue.arn }
}

output "dead_letter_queue_urls" {
  description = "URL of each consumer queue's dead-letter queue, keyed by the consumer queue's declared name."
  value       = { for name, queue in aws_sqs_queue.dlq : name => queue.url }
}

output "bucket_names" {
  description = "Name of each declared bucket (for PLATFORM_BUCKET_<NAME>_NAME), keyed by its declared name."
  value       = { for name, bucket in aws_s3_bucket.this : name => bucket.bucket }
}

output "api_url" {
  description = "Where the API answers (GET <api_url>/v1/health): the custom domain, or the stage's execute-api address."
  value       = local.public_url
}

output "github_webhook_url" {
  description = "The GitHub App's webhook URL."
  value       = "${local.public_url}/v1/webhooks/github"
}

output "stripe_webhook_url" {
  description = "Where Stripe's webhook endpoint points (the billing route POST /v1/webhooks/stripe)."
  value       = "${local.public_url}/v1/webhooks/stripe"
}

output "function_names" {
  description = "Name of each deployed function (the declaration's functions of this stage, and the API), keyed by its declared name."
  value       = merge({ for name, function in aws_lambda_function.this : name => function.function_name }, { (local.api.name) = aws_lambda_function.api.function_name })
}

output "state_machine_arns" {
  description = "ARN of each state machine, keyed by its declared name."
  value       = { for name, machine in aws_sfn_state_machine.this : name => machine.arn }
}

output "secret_names" {
  description = "Name of each Secrets Manager secret whose value is set outside Terraform, keyed by its declared name."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.name }
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_alias" {
  description = "Alias of the platform key (PLATFORM_KMS_KEY_ID)."
  value       = aws_kms_alias.this.name
}
