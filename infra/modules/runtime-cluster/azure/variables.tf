variable "name" {
  description = "The region's name on the platform: every resource is named after it."
  type        = string
}

variable "location" {
  description = "The Azure region (westeurope, eastus, ...)."
  type        = string
}

variable "size" {
  description = "small, medium or large: the VM size and the autoscaling bounds (see local.sizes)."
  type        = string
  default     = "small"

  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "vnet_cidr" {
  description = "The cluster's virtual network; the nodes' subnet is cut from it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "api_allowed_cidrs" {
  description = "Who may reach the Kubernetes API (the Terraform runner's egress)."
  type        = list(string)
  default     = []
}

variable "overcommit" {
  description = "How many times the nodes' allocatable CPU and memory the namespaces' quotas may add up to."
  type        = number
  default     = 2
}
