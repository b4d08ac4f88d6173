variable "stage" {
  description = "Deployment stage (for example dev or prod). Suffixed to every resource name and used to pick stage-dependent settings from the resource declaration."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.stage))
    error_message = "The stage must be 1-16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "resources_file" {
  description = "Path to the shared resource declaration (infra/resources.json), read with jsondecode(file(...)). The local cloud reads the same file."
  type        = string
}

variable "tags" {
  description = "Tags added to every taggable resource of the module, on top of the provider's default_tags."
  type        = map(string)
  default     = {}
}

variable "repository_root" {
  description = "Path to the repository root, where the declaration's state machine definitions (statemachines/*.asl.json) and .chalice/config.json are read. Defaults to the directory above the resources file."
  type        = string
  default     = null
}

variable "function_packages" {
  description = "Zip of each function of the declaration, keyed by its declared name: path and base64 SHA-256 (build/packages.tfvars.json, written by `make package`)."
  type = map(object({
    path = string
    hash = string
  }))
}

variable "layer_package" {
  description = "The shared layer (pinned dependencies and chalicelib): path and base64 SHA-256 of build/layer.zip."
  type = object({
    path = string
    hash = string
  })
}

variable "api_package" {
  description = "The Chalice app (app.py): path and base64 SHA-256 of build/api.zip."
  type = object({
    path = string
    hash = string
  })
}

variable "api_definition_file" {
  description = "Chalice's Swagger of the app's routes (build/api-swagger.json), its integration URI left as @@API_HANDLER_INVOKE_ARN@@."
  type        = string
}

variable "github_app_id" {
  description = "The GitHub App's id (GITHUB_APP_ID). Not a secret; its private key and secrets go in the platform-github-app secret."
  type        = string
  default     = ""
}

variable "github_client_id" {
  description = "The GitHub App's OAuth client id (GITHUB_CLIENT_ID)."
  type        = string
  default     = ""
}

variable "platform_admins" {
  description = "GitHub logins of the platform admins (PLATFORM_ADMINS): they manage regions and plans."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of every log group of the module (functions, API access logs, state machines)."
  type        = number
  default     = 30
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic (it must confirm the subscription); null for none."
  type        = string
  default     = null
}

variable "sender_email" {
  description = "Address the platform sends mail from (an SES email identity, verified by a link AWS mails to it); null keeps the declaration's ses_identity.email."
  type        = string
  default     = null
}

variable "sms_monthly_spend_limit" {
  description = "SNS's monthly SMS spending limit in USD (accounts start at 1 until AWS raises the quota)."
  type        = number
  default     = 1
}

variable "manage_account_settings" {
  description = "Whether this stage owns the region's account-wide settings: API Gateway's CloudWatch role and SNS's SMS preferences. Set false in the second stage deployed to one account and region."
  type        = bool
  default     = true
}

variable "api_throttle" {
  description = "Stage-wide API Gateway throttling: steady requests per second and burst."
  type = object({
    rate_limit  = number
    burst_limit = number
  })
  default = {
    rate_limit  = 100
    burst_limit = 200
  }
}

variable "domain_name" {
  description = "Optional custom domain of the API (for example api.example.com); null serves it on the execute-api address only."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate of domain_name, in the API's region (a regional endpoint). Required with domain_name."
  type        = string
  default     = null
}

variable "zone_id" {
  description = "Route 53 hosted zone that gets the alias record of domain_name; null to create the record elsewhere."
  type        = string
  default     = null
}
