output "api_address" {
  description = "micro's HTTP API gateway of the cluster (what the platform calls)."
  value       = local.addresses.api
}

output "proxy_address" {
  description = "Where the cluster's gRPC proxy would be (what the micro CLI is given)."
  value       = local.addresses.proxy
}

output "credentials_secret" {
  description = "Where the platform's admin credential for the cluster is kept: a file (0600) on this machine, never its value."
  value       = "file:${terraform_data.cluster.output.state_dir}/credential.json"
}

output "capacity" {
  description = "What placement counts against: the sum of the resource quotas of the namespaces placed there."
  value       = local.capacities[var.size]
}
