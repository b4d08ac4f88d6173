output "api_address" {
  description = "micro's HTTP API gateway of the cluster (what the platform calls)."
  value       = module.micro.api_address
}

output "proxy_address" {
  description = "micro's gRPC proxy of the cluster (what the micro CLI is given)."
  value       = module.micro.proxy_address
}

output "credentials_secret" {
  description = "Where the platform's admin credential for the cluster is kept (a reference, never the value)."
  value       = "aws-secretsmanager:${aws_secretsmanager_secret.platform.arn}"
}

output "capacity" {
  description = "What placement counts against (the sum of the namespaces' plan quotas): CPU millicores and memory MiB."
  value       = module.cluster.capacity
}
