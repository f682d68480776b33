output "alb_dns_name" {
  description = "DNS name of the load balancer: point the certificate's domain (CNAME or alias) at it."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone of the load balancer, for an alias record."
  value       = module.alb.zone_id
}

output "ecr_repository_urls" {
  description = "Where to push the images: api and executor (docker build --target api|executor)."
  value       = module.registry.repository_urls
}

output "cluster_name" {
  description = "ECS cluster of the API and the executors."
  value       = module.cluster.name
}

output "api_service_name" {
  description = "ECS service of the API."
  value       = module.api.service_name
}

output "executor_service_name" {
  description = "ECS service of the GPU executors."
  value       = module.executors.service_name
}

output "admin_task_definition_arn" {
  description = "One-off task for `ptw db upgrade` (its command) and `ptw keys create` (an override)."
  value       = module.api.admin_task_definition_arn
}

output "private_subnet_ids" {
  description = "Subnets to run the one-off admin task in."
  value       = module.network.private_subnet_ids
}

output "api_security_group_id" {
  description = "Security group to run the one-off admin task with."
  value       = module.network.api_security_group_id
}

output "artifact_bucket_name" {
  description = "S3 bucket of run artifacts."
  value       = module.storage.artifact_bucket_name
}

output "database_address" {
  description = "Host name of the PostgreSQL instance (private)."
  value       = module.database.address
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of Redis (private, TLS)."
  value       = module.cache.primary_endpoint
}

output "api_bootstrap_key_secret_arn" {
  description = "Secret where the operator stores the first admin API key."
  value       = module.secrets.api_bootstrap_key_secret_arn
}

output "kms_key_arn" {
  description = "Customer-managed key of the deployment's data at rest."
  value       = module.secrets.kms_key_arn
}
