variable "stage" {
  description = "Deployment stage of this composition. Fixed to \"prod\": use the other composition for another stage."
  type        = string
  default     = "prod"

  validation {
    condition     = var.stage == "prod"
    error_message = "This composition deploys the prod stage only."
  }
}

variable "region" {
  description = "AWS region the platform is deployed to."
  type        = string
  default     = "eu-west-1"
}

variable "function_packages" {
  description = "Zip of each function (path and base64 SHA-256), keyed by declared name: build/packages.tfvars.json from `make package`."
  type = map(object({
    path = string
    hash = string
  }))
}

variable "layer_package" {
  description = "build/layer.zip (path and base64 SHA-256), from build/packages.tfvars.json."
  type = object({
    path = string
    hash = string
  })
}

variable "api_package" {
  description = "build/api.zip (path and base64 SHA-256), from build/packages.tfvars.json."
  type = object({
    path = string
    hash = string
  })
}

variable "api_definition_file" {
  description = "build/api-swagger.json (Chalice's Swagger of the routes), from build/packages.tfvars.json."
  type        = string
}

variable "github_app_id" {
  description = "The GitHub App's id."
  type        = string
  default     = ""
}

variable "github_client_id" {
  description = "The GitHub App's OAuth client id."
  type        = string
  default     = ""
}

variable "platform_admins" {
  description = "GitHub logins of the platform admins."
  type        = list(string)
  default     = []
}

variable "alarm_email" {
  description = "Address the alarms are mailed to (confirms the subscription); null for none."
  type        = string
  default     = null
}

variable "sender_email" {
  description = "Address the platform sends mail from (an SES identity to verify); null keeps the declaration's."
  type        = string
  default     = null
}

variable "manage_account_settings" {
  description = "Whether this stage owns the account-wide API Gateway CloudWatch role and SMS preferences of its region (false for a second stage in the same account and region)."
  type        = bool
  default     = true
}

variable "domain_name" {
  description = "Optional custom domain of the API; null serves it on its execute-api address."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate (in the API's region) for domain_name."
  type        = string
  default     = null
}

variable "zone_id" {
  description = "Route 53 zone for domain_name's alias record; null to create it elsewhere."
  type        = string
  default     = null
}
