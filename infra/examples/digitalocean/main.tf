# A region on DigitalOcean: a DOKS cluster (modules/runtime-cluster/digitalocean) running micro
# (modules/micro-runtime). DigitalOcean has no secret manager: the credential is kept in the platform's
# Secrets Manager on AWS, as every region's is. The provider reads DIGITALOCEAN_TOKEN.

provider "digitalocean" {}

provider "aws" {
  alias  = "platform"
  region = var.platform_aws_region
}

module "cluster" {
  source = "../../modules/runtime-cluster/digitalocean"
  name   = var.name
  region = var.region
  size   = var.size
}

provider "kubernetes" {
  host                   = module.cluster.endpoint
  cluster_ca_certificate = module.cluster.cluster_ca_certificate
  token                  = module.cluster.token
}

provider "helm" {
  kubernetes {
    host                   = module.cluster.endpoint
    cluster_ca_certificate = module.cluster.cluster_ca_certificate
    token                  = module.cluster.token
  }
}

# The platform's admin credential on the cluster: made here, kept in the platform's own Secrets Manager
# (where the platform's functions read it with their role: the secrets named maas/regions/*), given to
# the cluster as a Kubernetes Secret, and never output: credentials_secret names where it is.
resource "random_password" "platform" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "platform" {
  #checkov:skip=CKV2_AWS_57:the value is micro's admin account secret on the cluster; it is rotated by re-applying the region with a new random_password (micro's auth service has no rotation hook a Lambda could call)
  provider                = aws.platform
  name                    = "maas/regions/${var.name}/micro-admin"
  description             = "The platform's admin account on the micro runtime of the region ${var.name}"
  kms_key_id              = "alias/maas-regions"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "platform" {
  provider      = aws.platform
  secret_id     = aws_secretsmanager_secret.platform.id
  secret_string = jsonencode({ id = "platform", secret = random_password.platform.result, issuer = "micro" })
}

module "micro" {
  source          = "../../modules/micro-runtime"
  name            = var.name
  platform_secret = random_password.platform.result
  storage_class   = "do-block-storage"
  service_annotations = {
    "service.beta.kubernetes.io/do-loadbalancer-name" = "maas-${var.name}"
  }
  depends_on = [module.cluster]
}
