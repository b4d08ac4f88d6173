variable "name" {
  description = "The region's name on the platform (the cluster is \"<name>-1\")."
  type        = string
}

variable "region" {
  description = "The cloud's region: \"local\" (this machine) is the only one."
  type        = string
  default     = "local"
}

variable "size" {
  description = "small, medium or large: how much the cluster accepts (see capacity)."
  type        = string
  default     = "small"

  validation {
    condition     = contains(["small", "medium", "large"], var.size)
    error_message = "size must be small, medium or large."
  }
}

variable "state_dir" {
  description = "Where the cluster keeps its state, addresses and credential file (the runner gives the region's working directory)."
  type        = string
}

variable "python" {
  description = "The Python interpreter that runs the micro stand-in (the platform's)."
  type        = string
}

variable "project_root" {
  description = "The platform's source tree (localcloud is imported from it)."
  type        = string
}

variable "github_url" {
  description = "Where github.com is for this machine (the GitHub stand-in): the cluster fetches sources from it."
  type        = string
}
