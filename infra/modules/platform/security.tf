# The platform key (runtime credentials and secret config vars, the secrets,
# the alarm topic), the Secrets Manager secrets of the declaration, the SES
# identity mail is sent from and SNS's SMS settings.

locals {
  # Secrets and the key outlive an accidental destroy where the table does.
  protected = contains(local.table.deletion_protection_stages, var.stage)
}

resource "aws_kms_key" "this" {
  description             = "Micro platform (${var.stage}): runtime credentials, secret config vars, secrets, alarms"
  enable_key_rotation     = true
  deletion_window_in_days = local.protected ? 30 : 7

  # The account administers the key through IAM (every role's use of it is
  # named in iam.tf); CloudWatch may publish alarms to the encrypted topic.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "AlarmsToTheEncryptedTopic"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })

  tags = var.tags
}

resource "aws_kms_alias" "this" {
  name          = local.kms_alias
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Secrets: created empty ({}); their values are set outside Terraform
# (infra/README.md) and never read back by it.
################################################################################

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:the values are third parties' credentials (the GitHub App's key, Stripe's keys, micro's admin token), rotated at their issuer and then written here (infra/README.md)
  for_each = local.secret_names

  name                    = "${each.key}-${var.stage}"
  description             = "Micro platform (${var.stage}): a JSON object with ${length(each.value.keys) > 0 ? join(", ", each.value.keys) : "its keys"}"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = local.protected ? 30 : 0

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each = local.secret_names

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = "{}"

  lifecycle {
    ignore_changes = [secret_string]
  }
}

################################################################################
# Mail and SMS
################################################################################

resource "aws_ses_email_identity" "this" {
  email = coalesce(var.sender_email, local.resources.ses_identity.email)
}

resource "aws_sns_sms_preferences" "this" {
  count = var.manage_account_settings ? 1 : 0

  default_sms_type    = "Transactional"
  monthly_spend_limit = var.sms_monthly_spend_limit
}
