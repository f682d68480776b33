output "capacity_provider_name" {
  description = "The GPU capacity provider, to associate with the cluster."
  value       = aws_ecs_capacity_provider.gpu.name
}

output "service_name" {
  description = "Name of the executor service."
  value       = aws_ecs_service.executor.name
}

output "autoscaling_group_name" {
  description = "Auto Scaling group of the GPU hosts."
  value       = aws_autoscaling_group.hosts.name
}

output "log_group_name" {
  description = "Log group of the executor tasks."
  value       = aws_cloudwatch_log_group.executor.name
}
