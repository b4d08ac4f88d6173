variable "name" {
  description = "The region's name on the platform: every resource is named after it."
  type        = string
}

variable "region" {
  description = "The DigitalOcean region (fra1, nyc3, sgp1, ...)."
  type        = string
}

variable "size" {
  description = "small, medium or large: the droplet size and the autoscaling bounds (see local.sizes)."
  type        = string
  default     = "small"

  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "kubernetes_version_prefix" {
  description = "The DOKS Kubernetes minor version; the newest patch of it is used."
  type        = string
  default     = "1.31."
}

variable "vpc_cidr" {
  description = "The cluster's VPC."
  type        = string
  default     = "10.40.0.0/20"
}

variable "overcommit" {
  description = "How many times the nodes' allocatable CPU and memory the namespaces' quotas may add up to."
  type        = number
  default     = 2
}
