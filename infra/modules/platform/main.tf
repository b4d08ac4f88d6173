# The platform's own AWS resources, created from the shared declaration in
# infra/resources.json. The local cloud creates the same resources on its moto
# server from the same file, so names and shapes cannot drift: every name here
# is "<declared name>-<stage>", and a queue's dead-letter queue is
# "<queue name>-dlq-<stage>".

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  resources = jsondecode(file(var.resources_file))

  table = local.resources.table

  # Keyed by declared name so that adding or removing one entry never
  # re-creates the others.
  queues  = { for queue in try(local.resources.queues, []) : queue.name => queue }
  rules   = { for rule in try(local.resources.rules, []) : rule.name => rule }
  buckets = { for bucket in try(local.resources.buckets, []) : bucket.name => bucket }

  # Where the declaration's relative paths (statemachines/*.asl.json) and .chalice/config.json are.
  repository_root = coalesce(var.repository_root, "${dirname(var.resources_file)}/..")

  # ARNs built from names, so that policies and definitions are known at plan time (and the plan can be
  # compared with the declaration and with .chalice/policy-<stage>.json).
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  arn_prefix = {
    for service in ["dynamodb", "events", "kms", "lambda", "logs", "secretsmanager", "ses", "sqs", "states"] :
    service => "arn:${local.partition}:${service}:${local.region}:${local.account_id}"
  }
  table_arn  = "${local.arn_prefix.dynamodb}:table/${local.table.name}-${var.stage}"
  bus_arn    = "${local.arn_prefix.events}:event-bus/${local.resources.event_bus.name}-${var.stage}"
  queue_arns = { for name in keys(local.queues) : name => "${local.arn_prefix.sqs}:${name}-${var.stage}" }

  # One queue policy per queue, allowing every rule that targets it.
  rule_names_by_queue = {
    for queue_name in keys(local.queues) : queue_name => [
      for rule in values(local.rules) : rule.name if rule.queue == queue_name
    ]
  }
  targeted_queues = {
    for queue_name, rule_names in local.rule_names_by_queue : queue_name => rule_names
    if length(rule_names) > 0
  }

}

################################################################################
# DynamoDB: the single table
################################################################################

resource "aws_dynamodb_table" "this" {
  #checkov:skip=CKV_AWS_119:encrypted at rest with DynamoDB's AWS owned key; a customer managed key would add a KMS request to every read and write and a KMS grant to every role
  name         = "${local.table.name}-${var.stage}"
  billing_mode = local.table.billing_mode
  hash_key     = local.table.hash_key
  range_key    = local.table.range_key

  stream_enabled   = true
  stream_view_type = local.table.stream_view_type

  deletion_protection_enabled = contains(local.table.deletion_protection_stages, var.stage)

  # Every key attribute of the single-table design is a string.
  dynamic "attribute" {
    for_each = local.table.attributes

    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = local.table.global_secondary_indexes

    content {
      name            = global_secondary_index.value.name
      hash_key        = global_secondary_index.value.hash_key
      range_key       = try(global_secondary_index.value.range_key, null)
      projection_type = global_secondary_index.value.projection
    }
  }

  # TTL only cleans up: the code treats an expired item as absent on its own.
  ttl {
    attribute_name = local.table.ttl_attribute
    enabled        = true
  }

  point_in_time_recovery {
    enabled = contains(local.table.point_in_time_recovery_stages, var.stage)
  }

  server_side_encryption {
    enabled = true
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = local.table.billing_mode == "PAY_PER_REQUEST"
      error_message = "The module supports only on-demand tables (billing_mode PAY_PER_REQUEST): provisioned capacity is not declared in resources.json."
    }
  }
}

################################################################################
# EventBridge: the platform bus
################################################################################

resource "aws_cloudwatch_event_bus" "this" {
  name = "${local.resources.event_bus.name}-${var.stage}"

  tags = var.tags
}

################################################################################
# SQS: one queue per declared consumer, each with a dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                      = "${each.key}-dlq-${var.stage}"
  message_retention_seconds = 1209600 # 14 days, the maximum, to leave time for a redrive
  sqs_managed_sse_enabled   = true

  tags = var.tags
}

resource "aws_sqs_queue" "this" {
  for_each = local.queues

  name                       = "${each.key}-${var.stage}"
  visibility_timeout_seconds = each.value.visibility_timeout
  max_message_size           = try(each.value.max_message_size, null)
  sqs_managed_sse_enabled    = true

  # The dead-letter queue's ARN built from its name, so that the redrive is known at plan time.
  redrive_policy = jsonencode({
    deadLetterTargetArn = "${local.arn_prefix.sqs}:${each.key}-dlq-${var.stage}"
    maxReceiveCount     = each.value.max_receive_count
  })

  tags = var.tags

  depends_on = [aws_sqs_queue.dlq]
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dlq[each.key].url

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}

################################################################################
# S3: buckets of the declaration (claim checks of queue messages too big for
# their queue). Bucket names are global across AWS accounts, so the account id
# follows "<declared name>-<stage>" here; the handlers read the name from
# PLATFORM_BUCKET_<NAME>_NAME.
################################################################################


resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:claim-check payloads live minutes; every access is already in the consumers' logs, and access logs would need a second bucket
  #checkov:skip=CKV_AWS_21:objects are written once and deleted by their consumer: versions would only keep deleted payloads
  #checkov:skip=CKV_AWS_144:transient payloads of this region's queues: nothing to replicate
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) at rest; SSE-KMS would add a KMS grant to every producer and consumer role
  #checkov:skip=CKV2_AWS_62:nothing reacts to these objects: the queue message is the notification
  for_each = local.buckets

  bucket = "${each.key}-${var.stage}-${data.aws_caller_identity.current.account_id}"

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# What a consumer did not delete (a dead-lettered message never redriven)
# expires after the declared number of days.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = { for name, bucket in local.buckets : name => bucket if try(bucket.expire_days, null) != null }

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "expire"
    status = "Enabled"

    filter {}

    expiration {
      days = each.value.expire_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

################################################################################
# EventBridge rules routing events on the bus to the queues
################################################################################

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.rules

  name           = "${each.key}-${var.stage}"
  event_bus_name = aws_cloudwatch_event_bus.this.name
  event_pattern  = jsonencode(each.value.event_pattern)

  tags = var.tags
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = local.rules

  rule           = aws_cloudwatch_event_rule.this[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.this.name
  target_id      = "sqs-${each.value.queue}"
  arn            = aws_sqs_queue.this[each.value.queue].arn
}

resource "aws_sqs_queue_policy" "this" {
  for_each = local.targeted_queues

  queue_url = aws_sqs_queue.this[each.key].url

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AllowPlatformEventRules"
        Effect    = "Allow"
        Principal = { Service = "events.amazonaws.com" }
        Action    = "sqs:SendMessage"
        Resource  = aws_sqs_queue.this[each.key].arn
        Condition = {
          ArnEquals = {
            "aws:SourceArn" = [for rule_name in each.value : aws_cloudwatch_event_rule.this[rule_name].arn]
          }
        }
      }
    ]
  })
}
