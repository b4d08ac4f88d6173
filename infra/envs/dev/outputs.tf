output "table_name" {
  description = "Name of the platform's DynamoDB table."
  value       = module.platform.table_name
}

output "table_arn" {
  description = "ARN of the platform's DynamoDB table."
  value       = module.platform.table_arn
}

output "table_stream_arn" {
  description = "ARN of the table's DynamoDB stream."
  value       = module.platform.table_stream_arn
}

output "event_bus_name" {
  description = "Name of the platform's EventBridge bus."
  value       = module.platform.event_bus_name
}

output "event_bus_arn" {
  description = "ARN of the platform's EventBridge bus."
  value       = module.platform.event_bus_arn
}

output "queue_urls" {
  description = "URL of each consumer queue, keyed by its declared name."
  value       = module.platform.queue_urls
}

output "api_url" {
  description = "Where the API answers: GET <api_url>/v1/health."
  value       = module.platform.api_url
}

output "github_webhook_url" {
  description = "The GitHub App's webhook URL."
  value       = module.platform.github_webhook_url
}

output "stripe_webhook_url" {
  description = "Where Stripe's webhook endpoint points."
  value       = module.platform.stripe_webhook_url
}

output "secret_names" {
  description = "The Secrets Manager secrets to fill after the first apply, keyed by declared name."
  value       = module.platform.secret_names
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = module.platform.alarm_topic_arn
}
