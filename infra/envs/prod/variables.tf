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
