variable "name" {
  description = "The region's name on the platform: every resource is named after it."
  type        = string
}

variable "project" {
  description = "The GCP project the cluster is made in."
  type        = string
}

variable "region" {
  description = "The GCP region (europe-west1, us-central1, ...)."
  type        = string
}

variable "size" {
  description = "small, medium or large: the machine type and the autoscaling bounds (see local.sizes)."
  type        = string
  default     = "small"

  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "subnet_cidr" {
  description = "The nodes' subnet; pods and services get secondary ranges beside it."
  type        = string
  default     = "10.40.0.0/20"
}

variable "master_authorized_cidrs" {
  description = "Who may reach the Kubernetes API (the Terraform runner's egress)."
  type        = list(string)
  default     = []
}

variable "overcommit" {
  description = "How many times the nodes' allocatable CPU and memory the namespaces' quotas may add up to."
  type        = number
  default     = 2
}
