output "kms_key_arn" {
  description = "ARN of the customer-managed key that encrypts the deployment's data at rest."
  value       = aws_kms_key.main.arn
}

output "database_password" {
  description = "Master password of the database (also in Secrets Manager)."
  value       = random_password.database.result
  sensitive   = true
}

output "redis_auth_token" {
  description = "AUTH token of Redis (also in Secrets Manager)."
  value       = random_password.redis_auth.result
  sensitive   = true
}

output "database_url_secret_arn" {
  description = "Secret holding PTW_DATABASE_URL."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "redis_url_secret_arn" {
  description = "Secret holding PTW_REDIS_URL."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "api_bootstrap_key_secret_arn" {
  description = "Secret where the operator keeps the first admin API key."
  value       = aws_secretsmanager_secret.api_bootstrap_key.arn
}

output "database_password_secret_arn" {
  description = "Secret holding the database master password."
  value       = aws_secretsmanager_secret.database_password.arn
}

output "redis_auth_token_secret_arn" {
  description = "Secret holding the Redis AUTH token."
  value       = aws_secretsmanager_secret.redis_auth_token.arn
}
