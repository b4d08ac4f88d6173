# The Terraform runner on AWS: an ECS Fargate task per message of the terraform-runs queue, started by an
# EventBridge Pipe (SQS source, ECS RunTask target) with the message body in PLATFORM_TASK_INPUT (a pipe's
# ECS parameters may be dynamic JSON paths: "$.body" is the SQS message's body; "Amazon EventBridge Pipes
# targets", EventBridge User Guide). The task runs the real terraform in the region's directory and
# answers the region state machine's task token (SendTaskSuccess / SendTaskFailure). The regions' state
# and saved plans live in a versioned, encrypted bucket; their admin credentials in Secrets Manager under
# maas/regions/*, encrypted with the key alias/maas-regions.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name = "maas-terraform-runner-${var.stage}"
}

resource "aws_kms_key" "regions" {
  description         = "maas ${var.stage}: the regions' Terraform state and admin credentials"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Account"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Logs"
        Effect    = "Allow"
        Principal = { Service = "logs.${data.aws_region.current.name}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "regions" {
  name          = "alias/maas-regions"
  target_key_id = aws_kms_key.regions.key_id
}

# ---------------------------------------------------------------------------- state

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_18:the state bucket is read and written by the runner's role only; its API calls are in CloudTrail, and an access-log bucket per installation would hold nothing more
  #checkov:skip=CKV2_AWS_62:nothing reacts to a change of a region's Terraform state: the runner reports through the state machine's task token
  #checkov:skip=CKV_AWS_144:versioned and KMS-encrypted; replicating it to a second region needs a bucket and key there, which this module leaves to the operator
  bucket = "maas-regions-state-${var.stage}-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.regions.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    id     = "old-versions-and-plans"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# ---------------------------------------------------------------------------- the task

resource "aws_ecs_cluster" "this" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/maas/${var.stage}/terraform-runner"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.regions.arn
}

resource "aws_iam_role" "execution" {
  name = "${local.name}-execution"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  count = length(var.cloud_credentials_secret_arns) > 0 ? 1 : 0
  name  = "cloud-credentials"
  role  = aws_iam_role.execution.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "secretsmanager:GetSecretValue", Resource = values(var.cloud_credentials_secret_arns) }]
  })
}

# What the runner does on AWS itself: the regions' state and plans, their admin credentials, the region
# record, the task tokens; and what the AWS composition creates (an EKS cluster and its network), which
# needs broad rights on those services in the account the regions are made in.
resource "aws_iam_role" "task" {
  name = "${local.name}-task"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ecs-tasks.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "task" {
  name = "platform"
  role = aws_iam_role.task.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["s3:ListBucket"], Resource = aws_s3_bucket.state.arn },
      { Effect = "Allow", Action = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], Resource = "${aws_s3_bucket.state.arn}/regions/*" },
      { Effect = "Allow", Action = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], Resource = aws_kms_key.regions.arn },
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret", "secretsmanager:TagResource", "secretsmanager:GetResourcePolicy"]
        Resource = "arn:${data.aws_partition.current.partition}:secretsmanager:*:${data.aws_caller_identity.current.account_id}:secret:maas/regions/*"
      },
      { Effect = "Allow", Action = ["dynamodb:GetItem", "dynamodb:Query"], Resource = [var.table_arn, "${var.table_arn}/index/*"] },
      { Effect = "Allow", Action = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"], Resource = var.state_machine_arn },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "task_regions" {
  for_each = toset(["AmazonEKSClusterPolicy", "AmazonVPCFullAccess", "IAMFullAccess", "AmazonEC2FullAccess", "CloudWatchLogsFullAccess", "AWSKeyManagementServicePowerUser"])

  role       = aws_iam_role.task.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.value}"
}

resource "aws_ecs_task_definition" "this" {
  #checkov:skip=CKV_AWS_336:Terraform writes its working directory, providers and saved plans to the task's filesystem; Fargate's ephemeral storage is the task's own and discarded after each run
  family                   = local.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  ephemeral_storage {
    size_in_gib = 30 # providers, plan files
  }

  container_definitions = jsonencode([{
    name                   = "runner"
    image                  = var.image
    essential              = true
    command                = ["python", "-m", "functions.terraform_runner"]
    readonlyRootFilesystem = false
    environment = [for k, v in merge(var.environment, {
      PLATFORM_TERRAFORM_STATE_BUCKET = aws_s3_bucket.state.bucket
      PLATFORM_TERRAFORM_DIR          = "/tmp/regions"
    }) : { name = k, value = v }]
    secrets = [for k, arn in var.cloud_credentials_secret_arns : { name = k, valueFrom = arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "runner"
      }
    }
  }])
}

resource "aws_security_group" "task" {
  #checkov:skip=CKV2_AWS_5:attached to the runner's tasks by the EventBridge Pipe's ECS network configuration below, which checkov does not follow
  name        = local.name
  description = "The Terraform runner: out to the cloud APIs and registries only"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to the cloud APIs, the provider registry and the clusters"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# ---------------------------------------------------------------------------- the pipe

resource "aws_iam_role" "pipe" {
  name = "${local.name}-pipe"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "pipes.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id } }
    }]
  })
}

resource "aws_iam_role_policy" "pipe" {
  name = "queue-to-task"
  role = aws_iam_role.pipe.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], Resource = var.queue_arn },
      { Effect = "Allow", Action = "ecs:RunTask", Resource = aws_ecs_task_definition.this.arn_without_revision },
      { Effect = "Allow", Action = "ecs:TagResource", Resource = "*", Condition = { StringEquals = { "ecs:CreateAction" = "RunTask" } } },
      { Effect = "Allow", Action = "iam:PassRole", Resource = [aws_iam_role.execution.arn, aws_iam_role.task.arn] },
    ]
  })
}

resource "aws_pipes_pipe" "this" {
  name     = local.name
  role_arn = aws_iam_role.pipe.arn
  source   = var.queue_arn
  target   = aws_ecs_cluster.this.arn

  source_parameters {
    sqs_queue_parameters {
      batch_size = 1
    }
  }

  target_parameters {
    ecs_task_parameters {
      task_definition_arn = aws_ecs_task_definition.this.arn_without_revision
      launch_type         = "FARGATE"
      task_count          = 1

      network_configuration {
        aws_vpc_configuration {
          subnets          = var.subnet_ids
          security_groups  = [aws_security_group.task.id]
          assign_public_ip = "DISABLED"
        }
      }

      overrides {
        container_override {
          name = "runner"
          environment {
            name  = "PLATFORM_TASK_INPUT"
            value = "$.body"
          }
        }
      }
    }
  }

  depends_on = [aws_iam_role_policy.pipe]
}
