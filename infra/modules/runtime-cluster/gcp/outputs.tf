output "cluster_name" {
  description = "The GKE cluster's name."
  value       = google_container_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API's endpoint (for the kubernetes and helm providers)."
  value       = "https://${google_container_cluster.this.endpoint}"
}

output "cluster_ca_certificate" {
  description = "The Kubernetes API's CA certificate, PEM."
  value       = base64decode(google_container_cluster.this.master_auth[0].cluster_ca_certificate)
}

output "token" {
  description = "An access token of the runner's identity (for the kubernetes and helm providers)."
  value       = data.google_client_config.current.access_token
  sensitive   = true
}

output "capacity" {
  description = "What placement counts against: the nodes' allocatable CPU and memory at the autoscaling maximum (per zone, three zones), less micro's own services, times the overcommit."
  value = {
    cpu_millicores = floor((local.zones * local.size.max * local.size.allocatable_cpu - local.reserved_cpu) * var.overcommit)
    memory_mib     = floor((local.zones * local.size.max * local.size.allocatable_mib - local.reserved_mib) * var.overcommit)
  }
}
