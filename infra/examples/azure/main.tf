# A region on Azure: an AKS cluster (modules/runtime-cluster/azure) running micro (modules/micro-runtime).
# The runner's identity reaches the API through Entra ID (kubelogin's exec plugin, as AKS documents for
# clusters with local accounts disabled).

provider "azurerm" {
  features {}
}

provider "aws" {
  alias  = "platform"
  region = var.platform_aws_region
}

module "cluster" {
  source   = "../../modules/runtime-cluster/azure"
  name     = var.name
  location = var.region
  size     = var.size
}

# The runner has no Azure CLI login: kubelogin's service principal mode reads AZURE_CLIENT_ID,
# AZURE_CLIENT_SECRET and AZURE_TENANT_ID from the runner's environment (azure.github.io/kubelogin,
# "Service Principal" login mode; "get-token"); the server id is AKS's Entra ID application.
provider "kubernetes" {
  host                   = module.cluster.endpoint
  cluster_ca_certificate = module.cluster.cluster_ca_certificate
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "kubelogin"
    args        = ["get-token", "--login", "spn", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
  }
}

provider "helm" {
  kubernetes {
    host                   = module.cluster.endpoint
    cluster_ca_certificate = module.cluster.cluster_ca_certificate
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      args        = ["get-token", "--login", "spn", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    }
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
  storage_class   = "managed-csi"
  depends_on      = [module.cluster]
}
