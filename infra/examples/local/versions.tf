terraform {
  required_version = ">= 1.5"
  # Built-ins only (terraform_data, local-exec): nothing to download, so it runs offline.
}
