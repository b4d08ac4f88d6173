output "cluster_name" {
  description = "The EKS cluster's name."
  value       = aws_eks_cluster.this.name
}

output "endpoint" {
  description = "The Kubernetes API's endpoint (for the kubernetes and helm providers)."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "The Kubernetes API's CA certificate, PEM."
  value       = base64decode(aws_eks_cluster.this.certificate_authority[0].data)
}

output "token" {
  description = "A short-lived token of the runner's identity on the cluster (for the kubernetes and helm providers)."
  value       = data.aws_eks_cluster_auth.this.token
  sensitive   = true
}

output "capacity" {
  description = "What placement counts against: the nodes' allocatable CPU and memory at the autoscaling maximum, less micro's own services, times the overcommit."
  value = {
    cpu_millicores = floor((local.size.max * local.size.allocatable_cpu - local.reserved_cpu) * var.overcommit)
    memory_mib     = floor((local.size.max * local.size.allocatable_mib - local.reserved_mib) * var.overcommit)
  }
}

output "kms_key_arn" {
  description = "The region's KMS key (EKS secrets, logs, node volumes)."
  value       = aws_kms_key.this.arn
}
