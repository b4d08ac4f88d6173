# A DOKS cluster for one region of the platform: a VPC of its own, automatic patch upgrades in a
# maintenance window, surge upgrades, and one node pool that autoscales between the size's bounds.

locals {
  sizes = {
    small  = { droplet = "s-2vcpu-4gb", allocatable_cpu = 1900, allocatable_mib = 2800, min = 2, max = 3 }
    medium = { droplet = "s-4vcpu-8gb", allocatable_cpu = 3900, allocatable_mib = 6200, min = 3, max = 6 }
    large  = { droplet = "s-8vcpu-16gb", allocatable_cpu = 7900, allocatable_mib = 13600, min = 3, max = 12 }
  }
  size         = local.sizes[var.size]
  reserved_cpu = 1500
  reserved_mib = 3072
}

data "digitalocean_kubernetes_versions" "this" {
  version_prefix = var.kubernetes_version_prefix
}

resource "digitalocean_vpc" "this" {
  name     = "maas-${var.name}"
  region   = var.region
  ip_range = var.vpc_cidr
}

resource "digitalocean_kubernetes_cluster" "this" {
  name          = "maas-${var.name}"
  region        = var.region
  version       = data.digitalocean_kubernetes_versions.this.latest_version
  vpc_uuid      = digitalocean_vpc.this.id
  auto_upgrade  = true
  surge_upgrade = true
  tags          = ["maas", "maas-${var.name}"]

  maintenance_policy {
    day        = "sunday"
    start_time = "03:00"
  }

  node_pool {
    name       = "maas-${var.name}"
    size       = local.size.droplet
    auto_scale = true
    min_nodes  = local.size.min
    max_nodes  = local.size.max
    labels     = { "maas-region" = var.name }
  }
}
