variable "stage" {
  description = "The platform's stage (dev, prod): names end with it."
  type        = string
}

variable "queue_arn" {
  description = "The terraform-runs queue (infra/resources.json): each message starts one task."
  type        = string
}

variable "image" {
  description = "The runner's image: the platform's code, Python 3.11 and the terraform binary (the command is python -m functions.terraform_runner)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in (with a NAT gateway: they reach the clouds' APIs and the provider registry)."
  type        = list(string)
}

variable "vpc_id" {
  description = "The VPC of those subnets."
  type        = string
}

variable "cpu" {
  description = "The task's CPU units (infra/resources.json tasks[].cpu)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "The task's memory in MiB (infra/resources.json tasks[].memory)."
  type        = number
  default     = 2048
}

variable "environment" {
  description = "The platform's environment for the runner (table, bus, state machines, PLATFORM_TERRAFORM_STATE_BUCKET is set here)."
  type        = map(string)
  default     = {}
}

variable "cloud_credentials_secret_arns" {
  description = "Secrets holding the other clouds' credentials (GOOGLE_CREDENTIALS, ARM_*, DIGITALOCEAN_TOKEN), read by the task into its environment."
  type        = map(string)
  default     = {}
}

variable "table_arn" {
  description = "The platform's table (the runner reads the region's record)."
  type        = string
}

variable "state_machine_arn" {
  description = "The region state machine (the runner answers its task tokens)."
  type        = string
}
