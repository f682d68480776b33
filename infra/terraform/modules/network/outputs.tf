output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "public_subnet_ids" {
  description = "Subnets of the load balancer."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets of tasks, hosts, the database and Redis."
  value       = aws_subnet.private[*].id
}

output "alb_security_group_id" {
  description = "Security group of the load balancer."
  value       = aws_security_group.alb.id
}

output "api_security_group_id" {
  description = "Security group of API tasks."
  value       = aws_security_group.api.id
}

output "executors_security_group_id" {
  description = "Security group of GPU executor hosts and tasks."
  value       = aws_security_group.executors.id
}

output "database_security_group_id" {
  description = "Security group of PostgreSQL."
  value       = aws_security_group.database.id
}

output "cache_security_group_id" {
  description = "Security group of Redis."
  value       = aws_security_group.cache.id
}
