provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "micro-platform"
      stage      = var.stage
      managed_by = "terraform"
    }
  }
}

module "platform" {
  source = "../../modules/platform"

  stage = var.stage
  # The same declaration the local cloud reads: one list, no drift.
  resources_file = "${path.module}/../../resources.json"
}
