output "cluster_name" {
  description = "The AKS cluster's name."
  value       = azurerm_kubernetes_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API's endpoint (for the kubernetes and helm providers)."
  value       = azurerm_kubernetes_cluster.this.kube_admin_config[0].host
}

output "cluster_ca_certificate" {
  description = "The Kubernetes API's CA certificate, PEM."
  value       = base64decode(azurerm_kubernetes_cluster.this.kube_admin_config[0].cluster_ca_certificate)
}

output "resource_group" {
  description = "The resource group holding the cluster."
  value       = azurerm_resource_group.this.name
}

output "capacity" {
  description = "What placement counts against: the nodes' allocatable CPU and memory at the autoscaling maximum, less micro's own services, times the overcommit."
  value = {
    cpu_millicores = floor((local.size.max * local.size.allocatable_cpu - local.reserved_cpu) * var.overcommit)
    memory_mib     = floor((local.size.max * local.size.allocatable_mib - local.reserved_mib) * var.overcommit)
  }
}
