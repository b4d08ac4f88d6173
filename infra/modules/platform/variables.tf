variable "stage" {
  description = "Deployment stage (for example dev or prod). Suffixed to every resource name and used to pick stage-dependent settings from the resource declaration."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.stage))
    error_message = "The stage must be 1-16 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "resources_file" {
  description = "Path to the shared resource declaration (infra/resources.json), read with jsondecode(file(...)). The local cloud reads the same file."
  type        = string
}

variable "tags" {
  description = "Tags added to every taggable resource of the module, on top of the provider's default_tags."
  type        = map(string)
  default     = {}
}
