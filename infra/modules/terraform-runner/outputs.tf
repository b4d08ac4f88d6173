output "state_bucket" {
  description = "The regions' Terraform state and saved plans (PLATFORM_TERRAFORM_STATE_BUCKET)."
  value       = aws_s3_bucket.state.bucket
}

output "kms_key_arn" {
  description = "The key of the regions' state and admin credentials (alias/maas-regions)."
  value       = aws_kms_key.regions.arn
}

output "task_definition_arn" {
  description = "The runner's task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "pipe_arn" {
  description = "The pipe from the terraform-runs queue to the task."
  value       = aws_pipes_pipe.this.arn
}
