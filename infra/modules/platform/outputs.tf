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
