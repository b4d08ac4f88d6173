# Remote state in S3, as a partial configuration: the bucket (and its region)
# belong to the AWS account, not to the code, so they are passed at init time:
#
#   cp backend.hcl.example backend.hcl   # then fill in the bucket and region
#   terraform -chdir=infra/envs/prod init -backend-config=backend.hcl
#
# Without -backend-config, init asks for the bucket interactively. Tests and
# CI checks that need no state run "terraform init -backend=false".
terraform {
  backend "s3" {
    key          = "micro-platform/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
