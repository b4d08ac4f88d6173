variable "name" {
  description = "The region's name on the platform (the runner gives it)."
  type        = string
}

variable "region" {
  description = "The cloud's region (the runner gives the region's `region`)."
  type        = string
}

variable "size" {
  description = "small, medium or large (the runner gives the region's `size`)."
  type        = string
  default     = "small"
}

variable "platform_aws_region" {
  description = "The AWS region of the platform's Secrets Manager, where the cluster's admin credential is kept."
  type        = string
  default     = "us-east-1"
}
