output "cluster_name" {
  description = "The DOKS cluster's name."
  value       = digitalocean_kubernetes_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API's endpoint (for the kubernetes and helm providers)."
  value       = digitalocean_kubernetes_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "The Kubernetes API's CA certificate, PEM."
  value       = base64decode(digitalocean_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)
}

output "token" {
  description = "The cluster's admin token (for the kubernetes and helm providers); DigitalOcean renews it every 7 days."
  value       = digitalocean_kubernetes_cluster.this.kube_config[0].token
  sensitive   = true
}

output "capacity" {
  description = "What placement counts against: the nodes' allocatable CPU and memory at the autoscaling maximum, less micro's own services, times the overcommit."
  value = {
    cpu_millicores = floor((local.size.max * local.size.allocatable_cpu - local.reserved_cpu) * var.overcommit)
    memory_mib     = floor((local.size.max * local.size.allocatable_mib - local.reserved_mib) * var.overcommit)
  }
}
