# Least privilege: one role per function and one for the API, each naming
# exactly what its declaration entry "uses" (and, for a queue's consumer, that
# queue). Nothing here lists function names: a new entry of resources.json gets
# its role from its own "uses".
#
#   "uses": {
#     "table": false,                       # default true: the table and its indexes
#     "bus": true,                          # events:PutEvents on the platform bus
#     "queues": ["membership-sync"],        # send to these queues
#     "state_machines": ["deploy"],         # start these, and describe their executions
#     "buckets": {"queue-payloads": ["put", "get", "delete"]},
#     "secrets": ["platform-github-app"],   # read these secrets (the "secrets" list)
#     "kms": true,                          # encrypt/decrypt with the platform key
#     "email": true,                        # send mail from the SES identity
#     "sms": true,                          # send SMS through SNS
#     "task_tokens": true,                  # answer a waitForTaskToken step (SendTaskSuccess/Failure/Heartbeat)
#     "region_secrets": true                # read the regions' cluster credentials (maas/regions/<region>/*,
#                                           # made by the region compositions in infra/examples/, key alias/maas-regions)
#   }
#
# .chalice/policy-<stage>.json is the API's policy as the plan of this module
# renders it (region and account as *), checked equal by tests/functional/test_terraform.py.

locals {
  table_actions = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:TransactGetItems",
    "dynamodb:TransactWriteItems",
    "dynamodb:UpdateItem",
  ]
  object_actions = { put = "s3:PutObject", get = "s3:GetObject", delete = "s3:DeleteObject" }
  uses_fields    = ["table", "bus", "queues", "state_machines", "buckets", "secrets", "kms", "email", "sms", "task_tokens", "region_secrets"]

  state_machine_arns = {
    for machine in try(local.resources.state_machines, []) :
    machine.name => "${local.arn_prefix.states}:stateMachine:${machine.name}-${var.stage}"
  }
  execution_arns = {
    for machine in try(local.resources.state_machines, []) :
    machine.name => "${local.arn_prefix.states}:execution:${machine.name}-${var.stage}:*"
  }
  function_arns = { for name, function_name in local.function_names : name => "${local.arn_prefix.lambda}:function:${function_name}" }
  secret_arns = {
    # Secrets Manager appends "-" and six random characters to a secret's ARN.
    for name in keys(local.secret_names) : name => "${local.arn_prefix.secretsmanager}:secret:${name}-${var.stage}-??????"
  }
  # The key by its alias, so that the ARN is known before the key exists.
  key_arn_pattern = "${local.arn_prefix.kms}:key/*"
  key_condition   = { "ForAnyValue:StringEquals" = { "kms:ResourceAliases" = [local.kms_alias] } }

  principal_statements = {
    for name, principal in local.principals : name => concat(
      [{
        Sid      = "Logs"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${local.arn_prefix.logs}:log-group:${local.log_group_names[name]}:*"]
      }],
      [for statement in [{
        Sid      = "Table"
        Action   = local.table_actions
        Resource = [local.table_arn, "${local.table_arn}/index/*"]
      }] : statement if try(principal.uses.table, true)],
      [for statement in [{
        Sid      = "Bus"
        Action   = ["events:PutEvents"]
        Resource = [local.bus_arn]
      }] : statement if try(principal.uses.bus, false)],
      [for statement in [{
        Sid      = "SendToQueues"
        Action   = ["sqs:GetQueueAttributes", "sqs:SendMessage"]
        Resource = [for queue in try(principal.uses.queues, []) : local.queue_arns[queue]]
      }] : statement if length(try(principal.uses.queues, [])) > 0],
      [for statement in [{
        Sid      = "ConsumeQueues"
        Action   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
        Resource = [for queue_name, queue in local.consumed_queues : local.queue_arns[queue_name] if queue.consumer.function == name]
      }] : statement if length([for queue in values(local.consumed_queues) : queue if queue.consumer.function == name]) > 0],
      [for statement in [
        {
          Sid      = "StartExecutions"
          Action   = ["states:StartExecution"]
          Resource = [for machine in try(principal.uses.state_machines, []) : local.state_machine_arns[machine]]
        },
        {
          Sid      = "DescribeExecutions"
          Action   = ["states:DescribeExecution"]
          Resource = [for machine in try(principal.uses.state_machines, []) : local.execution_arns[machine]]
        },
      ] : statement if length(try(principal.uses.state_machines, [])) > 0],
      [
        for bucket, verbs in try(principal.uses.buckets, {}) : {
          Sid      = "Objects${replace(title(replace(bucket, "-", " ")), " ", "")}"
          Action   = sort([for verb in verbs : local.object_actions[verb]])
          Resource = ["arn:${local.partition}:s3:::${bucket}-${var.stage}-${local.account_id}/*"]
        }
      ],
      [for statement in [
        {
          Sid      = "Secrets"
          Action   = ["secretsmanager:GetSecretValue"]
          Resource = [for secret in try(principal.uses.secrets, []) : local.secret_arns[secret]]
        },
        {
          # The secrets are encrypted with the platform key: Secrets Manager
          # decrypts on the caller's behalf.
          Sid      = "SecretsKey"
          Action   = ["kms:Decrypt"]
          Resource = [local.key_arn_pattern]
          Condition = merge(local.key_condition, {
            StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
          })
        },
      ] : statement if length(try(principal.uses.secrets, [])) > 0],
      [for statement in [
        {
          Sid      = "RegionSecrets"
          Action   = ["secretsmanager:GetSecretValue"]
          Resource = ["${local.arn_prefix.secretsmanager}:secret:maas/regions/*"]
        },
        {
          Sid      = "RegionSecretsKey"
          Action   = ["kms:Decrypt"]
          Resource = [local.key_arn_pattern]
          Condition = {
            "ForAnyValue:StringEquals" = { "kms:ResourceAliases" = ["alias/maas-regions"] }
            StringEquals               = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
          }
        },
      ] : statement if try(principal.uses.region_secrets, false)],
      [for statement in [{
        Sid       = "Key"
        Action    = ["kms:Decrypt", "kms:Encrypt"]
        Resource  = [local.key_arn_pattern]
        Condition = local.key_condition
      }] : statement if try(principal.uses.kms, false)],
      [for statement in [{
        Sid      = "Email"
        Action   = ["ses:SendEmail", "ses:SendRawEmail"]
        Resource = ["${local.arn_prefix.ses}:identity/*"]
      }] : statement if try(principal.uses.email, false)],
      [for statement in [{
        # SMS to a phone number has no resource to name: the action is the limit.
        Sid      = "Sms"
        Action   = ["sns:Publish"]
        Resource = ["*"]
      }] : statement if try(principal.uses.sms, false)],
      [for statement in [{
        # A task token names no resource: Step Functions' SendTask* actions
        # take none ("Actions, resources, and condition keys for AWS Step
        # Functions"); the token itself is the credential.
        Sid      = "TaskTokens"
        Action   = ["states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess"]
        Resource = ["*"]
      }] : statement if try(principal.uses.task_tokens, false)],
    )
  }

  principal_policies = {
    for name, statements in local.principal_statements : name => {
      Version   = "2012-10-17"
      Statement = [for statement in statements : merge({ Effect = "Allow" }, statement)]
    }
  }
}

resource "aws_iam_role" "principal" {
  for_each = local.principals

  name = "${local.function_names[each.key]}-${local.region}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = var.tags

  lifecycle {
    precondition {
      condition = alltrue(concat(
        [for key in keys(try(each.value.uses, {})) : contains(local.uses_fields, key)],
        [for queue in try(each.value.uses.queues, []) : contains(keys(local.queues), queue)],
        [for machine in try(each.value.uses.state_machines, []) : contains(keys(local.state_machine_arns), machine)],
        [for bucket in keys(try(each.value.uses.buckets, {})) : contains(keys(local.buckets), bucket)],
        [for secret in try(each.value.uses.secrets, []) : contains(keys(local.secret_names), secret)],
        flatten([for verbs in values(try(each.value.uses.buckets, {})) : [for verb in verbs : contains(keys(local.object_actions), verb)]]),
      ))
      error_message = "${each.key}: \"uses\" has a field other than ${join(", ", local.uses_fields)}, or names a queue, state machine, bucket, secret or bucket action the declaration does not have."
    }
  }
}

resource "aws_iam_role_policy" "principal" {
  for_each = local.principals

  name   = "uses"
  role   = aws_iam_role.principal[each.key].id
  policy = jsonencode(local.principal_policies[each.key])
}
