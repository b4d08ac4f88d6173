variable "stage" {
  description = "Deployment stage of this composition. Fixed to \"dev\": use the other composition for another stage."
  type        = string
  default     = "dev"

  validation {
    condition     = var.stage == "dev"
    error_message = "This composition deploys the dev stage only."
  }
}

variable "region" {
  description = "AWS region the platform is deployed to."
  type        = string
  default     = "eu-west-1"
}
