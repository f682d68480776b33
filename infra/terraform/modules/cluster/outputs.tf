output "name" {
  description = "Name of the cluster."
  value       = aws_ecs_cluster.main.name
}

output "arn" {
  description = "ARN of the cluster."
  value       = aws_ecs_cluster.main.arn
}

output "capacity_providers" {
  description = "Capacity providers associated with the cluster; services depend on this association."
  value       = aws_ecs_cluster_capacity_providers.main.capacity_providers
}
