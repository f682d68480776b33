output "primary_endpoint" {
  description = "Host name of the primary (follows failover)."
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.main.port
}
