variable "name" {
  description = "The region's name on the platform: every resource is named after it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.name))
    error_message = "name must be a DNS label of at most 40 characters."
  }
}

variable "size" {
  description = "small, medium or large: the node type and the autoscaling bounds (see local.sizes)."
  type        = string
  default     = "small"

  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "kubernetes_version" {
  description = "The EKS Kubernetes version."
  type        = string
  default     = "1.31"
}

variable "vpc_cidr" {
  description = "The cluster's VPC: two public and two private subnets are cut from it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "api_allowed_cidrs" {
  description = "Who may reach the Kubernetes API's public endpoint (the Terraform runner's egress); empty: private endpoint only."
  type        = list(string)
  default     = []
}

variable "overcommit" {
  description = "How many times the nodes' allocatable CPU and memory the namespaces' quotas may add up to (quotas are limits; services rarely use all of theirs)."
  type        = number
  default     = 2
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "availability_zones" {
  description = "The two zones of the subnets (empty: the region's \"a\" and \"b\" zones)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "name two zones, or none."
  }
}
