# Credentials of the deployment in Secrets Manager. Containers receive them through ECS `secrets`, never as
# plain environment values in the task definition.

# Letters and digits only: both passwords travel inside connection URLs, where other characters need escaping.
resource "random_password" "database" {
  length  = 40
  special = false
}

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "database_password" {
  #checkov:skip=CKV2_AWS_57:The password is embedded in PTW_DATABASE_URL; rotate it with `terraform apply -replace=module.secrets.random_password.database` (docs/deployment.md) so the URL secret changes with it.
  name                    = "${var.name}/database-password"
  description             = "Master password of the ${var.name} PostgreSQL instance."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "database_password" {
  secret_id     = aws_secretsmanager_secret.database_password.id
  secret_string = random_password.database.result
}

resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:Derived from the database password and rotated with it by Terraform (see CKV2_AWS_57 on database_password).
  name                    = "${var.name}/database-url"
  description             = "PTW_DATABASE_URL: asyncpg URL of the ${var.name} database, TLS required."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgresql+asyncpg://${var.database_username}:${random_password.database.result}@${var.database_address}:${var.database_port}/${var.database_name}?ssl=require"
}

resource "aws_secretsmanager_secret" "redis_auth_token" {
  #checkov:skip=CKV2_AWS_57:ElastiCache auth tokens rotate through ModifyReplicationGroup (auth_token_update_strategy), which Terraform drives; see docs/deployment.md.
  name                    = "${var.name}/redis-auth-token"
  description             = "AUTH token of the ${var.name} Redis replication group."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "redis_auth_token" {
  secret_id     = aws_secretsmanager_secret.redis_auth_token.id
  secret_string = random_password.redis_auth.result
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:Derived from the Redis auth token and rotated with it by Terraform.
  name                    = "${var.name}/redis-url"
  description             = "PTW_REDIS_URL: rediss:// URL (TLS) of the ${var.name} Redis replication group."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis_auth.result}@${var.redis_address}:${var.redis_port}/0"
}

# The first admin API key is made by a one-off `ptw keys create` task and stored here by the operator
# (docs/deployment.md), so it never passes through Terraform state: this resource has no version on purpose.
resource "aws_secretsmanager_secret" "api_bootstrap_key" {
  #checkov:skip=CKV2_AWS_57:An API key of the product, revoked and reissued through the product (ptw keys create), not a credential Secrets Manager can rotate.
  name                    = "${var.name}/api-bootstrap-admin-key"
  description             = "The first admin API key of ${var.name}, written by the operator after the first deploy."
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}
