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
