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
  resources_file  = "${path.module}/../../resources.json"
  repository_root = "${path.module}/../../.."

  # Built by `make package`: terraform plan -var-file=../../../build/packages.tfvars.json
  function_packages   = var.function_packages
  layer_package       = var.layer_package
  api_package         = var.api_package
  api_definition_file = var.api_definition_file

  github_app_id           = var.github_app_id
  github_client_id        = var.github_client_id
  platform_admins         = var.platform_admins
  alarm_email             = var.alarm_email
  sender_email            = var.sender_email
  manage_account_settings = var.manage_account_settings
  domain_name             = var.domain_name
  certificate_arn         = var.certificate_arn
  zone_id                 = var.zone_id
}
