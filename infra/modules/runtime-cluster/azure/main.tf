# An AKS cluster for one region of the platform: a resource group and virtual network of its own, Azure
# CNI with Calico network policies, a system-assigned identity, Entra ID RBAC with local accounts off,
# the API reachable from the authorised ranges only, logs in a Log Analytics workspace, and the default
# node pool autoscaling between the size's bounds.

# Ddsv5 sizes, not Dsv5: the nodes' OS disks are ephemeral, which needs the local temporary disk that
# Dsv5 VMs do not have (learn.microsoft.com, "Ephemeral OS disks", size requirements; "Dv5 and Dsv5-series").
locals {
  sizes = {
    small  = { vm_size = "Standard_D2ds_v5", allocatable_cpu = 1900, allocatable_mib = 5500, min = 2, max = 3 }
    medium = { vm_size = "Standard_D4ds_v5", allocatable_cpu = 3860, allocatable_mib = 12700, min = 3, max = 6 }
    large  = { vm_size = "Standard_D8ds_v5", allocatable_cpu = 7820, allocatable_mib = 27600, min = 3, max = 12 }
  }
  size         = local.sizes[var.size]
  reserved_cpu = 1500
  reserved_mib = 3072
  tags         = { "maas-region" = var.name }
}

resource "azurerm_resource_group" "this" {
  name     = "maas-${var.name}"
  location = var.location
  tags     = local.tags
}

resource "azurerm_virtual_network" "this" {
  name                = "maas-${var.name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.vnet_cidr]
  tags                = local.tags
}

resource "azurerm_subnet" "nodes" {
  name                 = "nodes"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [cidrsubnet(var.vnet_cidr, 4, 0)]
}

# The nodes' subnet denies what comes from the internet but the load balancers' traffic to the nodes
# (AKS opens the service ports on the node resource group's own group as services ask).
resource "azurerm_network_security_group" "nodes" {
  name                = "maas-${var.name}-nodes"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_subnet_network_security_group_association" "nodes" {
  subnet_id                 = azurerm_subnet.nodes.id
  network_security_group_id = azurerm_network_security_group.nodes.id
}

resource "azurerm_log_analytics_workspace" "this" {
  name                = "maas-${var.name}"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = 90
  tags                = local.tags
}

resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_115:a private cluster's API is reachable only from its virtual network, and the Terraform runner (an ECS task on AWS) is outside it; the API is limited to var.api_allowed_cidrs instead
  #checkov:skip=CKV_AZURE_6:authorized IP ranges are set, from var.api_allowed_cidrs (the runner's egress), which checkov cannot resolve from a variable
  #checkov:skip=CKV_AZURE_117:the disks are encrypted at rest with platform-managed keys and at the host (host_encryption_enabled); customer-managed keys (a disk encryption set in a Key Vault) are left out of this module
  name                              = "maas-${var.name}"
  location                          = azurerm_resource_group.this.location
  resource_group_name               = azurerm_resource_group.this.name
  dns_prefix                        = "maas-${var.name}"
  sku_tier                          = "Standard"
  automatic_upgrade_channel         = "stable"
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_policy_enabled              = true

  # System pods only (kube-system, CoreDNS, the agents); micro and the tenants run on the pool below.
  default_node_pool {
    name                         = "system"
    vm_size                      = "Standard_D2ds_v5"
    vnet_subnet_id               = azurerm_subnet.nodes.id
    only_critical_addons_enabled = true
    host_encryption_enabled      = true
    auto_scaling_enabled         = true
    min_count                    = 1
    max_count                    = 2
    max_pods                     = 50
    os_disk_size_gb              = 30
    os_disk_type                 = "Ephemeral"
    zones                        = ["1", "2", "3"]

    upgrade_settings {
      max_surge = "33%"
    }
  }

  identity {
    type = "SystemAssigned"
  }

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
  }

  api_server_access_profile {
    authorized_ip_ranges = var.api_allowed_cidrs
  }

  network_profile {
    network_plugin    = "azure"
    network_policy    = "calico"
    load_balancer_sku = "standard"
  }

  oms_agent {
    log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  tags = local.tags
}

resource "azurerm_kubernetes_cluster_node_pool" "workloads" {
  name                    = "workloads"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.this.id
  vm_size                 = local.size.vm_size
  vnet_subnet_id          = azurerm_subnet.nodes.id
  host_encryption_enabled = true
  auto_scaling_enabled    = true
  min_count               = local.size.min
  max_count               = local.size.max
  max_pods                = 50
  os_disk_size_gb         = 30
  os_disk_type            = "Ephemeral"
  zones                   = ["1", "2", "3"]
  tags                    = local.tags

  upgrade_settings {
    max_surge = "33%"
  }
}

# With Azure RBAC for Kubernetes and local accounts off, whoever makes the cluster has no access to its
# API until a role says so: the runner's principal (the one Terraform runs as) gets the cluster-admin
# role, so the Kubernetes and Helm providers can install micro (learn.microsoft.com, "Use Azure RBAC for
# Kubernetes Authorization"; the assignment can take a few minutes to apply).
data "azurerm_client_config" "current" {}

resource "azurerm_role_assignment" "runner" {
  scope                = azurerm_kubernetes_cluster.this.id
  role_definition_name = "Azure Kubernetes Service RBAC Cluster Admin"
  principal_id         = data.azurerm_client_config.current.object_id
}
