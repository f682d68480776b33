# The ptw deployment on AWS: one module per component, wired here.
#
#   internet -> ALB (TLS 1.2+, WAF) -> API on Fargate (>= 2 tasks) --+--> RDS PostgreSQL
#                                                                    +--> ElastiCache Redis (queue, events)
#   GPU executors on ECS/EC2 (0..N, scaled on queue depth) ---------+--> S3 artifacts
# Secrets in Secrets Manager, one KMS key for data at rest, every log group encrypted and retained.

locals {
  app_port      = 8000
  database_port = 5432
  redis_port    = 6379
  database_name = "ptw"
  database_user = "ptw"

  task_secrets = {
    PTW_DATABASE_URL = module.secrets.database_url_secret_arn
    PTW_REDIS_URL    = module.secrets.redis_url_secret_arn
  }
  task_environment = {
    PTW_ENV             = "production"
    PTW_REDIS_PREFIX    = var.name
    PTW_ARTIFACT_BUCKET = module.storage.artifact_bucket_name
  }
  queue_metric = {
    namespace      = var.queue_metric_namespace
    queued         = "QueueDepth"
    running        = "RunningRuns"
    dimension_name = "ResourceClass"
    resource_class = "gpu"
  }
}

module "secrets" {
  source = "./modules/secrets"

  name              = var.name
  database_username = local.database_user
  database_name     = local.database_name
  database_address  = module.database.address
  database_port     = local.database_port
  redis_address     = module.cache.primary_endpoint
  redis_port        = local.redis_port
}

module "network" {
  source = "./modules/network"

  name               = var.name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = module.secrets.kms_key_arn
  log_retention_days = var.log_retention_days
  app_port           = local.app_port
  database_port      = local.database_port
  redis_port         = local.redis_port
}

module "storage" {
  source = "./modules/storage"

  name                     = var.name
  kms_key_arn              = module.secrets.kms_key_arn
  noncurrent_artifact_days = var.artifact_noncurrent_days
}

module "registry" {
  source = "./modules/registry"

  name        = var.name
  kms_key_arn = module.secrets.kms_key_arn
}

module "alb" {
  source = "./modules/alb"

  name                = var.name
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.public_subnet_ids
  security_group_id   = module.network.alb_security_group_id
  certificate_arn     = var.certificate_arn
  idle_timeout        = var.alb_idle_timeout
  app_port            = local.app_port
  log_bucket          = module.storage.log_bucket_name
  log_prefix          = module.storage.alb_log_prefix
  deletion_protection = var.deletion_protection
  kms_key_arn         = module.secrets.kms_key_arn
  log_retention_days  = var.log_retention_days
}

module "database" {
  source = "./modules/database"

  name                  = var.name
  subnet_ids            = module.network.private_subnet_ids
  security_group_id     = module.network.database_security_group_id
  kms_key_arn           = module.secrets.kms_key_arn
  instance_class        = var.db_instance_class
  multi_az              = var.db_multi_az
  backup_retention_days = var.db_backup_retention_days
  deletion_protection   = var.deletion_protection
  username              = local.database_user
  password              = module.secrets.database_password
  database_name         = local.database_name
  port                  = local.database_port
  log_retention_days    = var.log_retention_days
}

module "cache" {
  source = "./modules/cache"

  name               = var.name
  subnet_ids         = module.network.private_subnet_ids
  security_group_id  = module.network.cache_security_group_id
  kms_key_arn        = module.secrets.kms_key_arn
  auth_token         = module.secrets.redis_auth_token
  node_type          = var.redis_node_type
  port               = local.redis_port
  log_retention_days = var.log_retention_days
}

module "cluster" {
  source = "./modules/cluster"

  name                     = var.name
  kms_key_arn              = module.secrets.kms_key_arn
  log_retention_days       = var.log_retention_days
  extra_capacity_providers = [module.executors.capacity_provider_name]
}

module "api" {
  source = "./modules/api"

  name                = var.name
  cluster_name        = module.cluster.name
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.network.api_security_group_id
  target_group_arn    = module.alb.target_group_arn
  image               = "${module.registry.repository_urls["api"]}:${var.image_tag}"
  repository_arn      = module.registry.repository_arns["api"]
  app_port            = local.app_port
  cpu                 = var.api_cpu
  memory              = var.api_memory
  desired_count       = var.api_desired_count
  max_count           = var.api_max_count
  kms_key_arn         = module.secrets.kms_key_arn
  log_retention_days  = var.log_retention_days
  secret_arns         = local.task_secrets
  artifact_bucket_arn = module.storage.artifact_bucket_arn
  metric_namespace    = var.queue_metric_namespace
  # The API publishes the queue depth: it runs while no executor does.
  environment = merge(local.task_environment, {
    PTW_CLOUDWATCH_NAMESPACE = var.queue_metric_namespace
  })
}

module "executors" {
  source = "./modules/executors"

  name                       = var.name
  cluster_name               = module.cluster.name
  cluster_capacity_providers = module.cluster.capacity_providers
  subnet_ids                 = module.network.private_subnet_ids
  security_group_id          = module.network.executors_security_group_id
  image                      = "${module.registry.repository_urls["executor"]}:${var.image_tag}"
  repository_arn             = module.registry.repository_arns["executor"]
  instance_type              = var.executor_instance_type
  max_instances              = var.executor_max_instances
  max_workers                = var.executor_max_workers
  gpus_per_worker            = var.executor_gpus_per_worker
  cpu                        = var.executor_cpu
  memory                     = var.executor_memory
  idle_minutes               = var.executor_idle_minutes
  kms_key_arn                = module.secrets.kms_key_arn
  log_retention_days         = var.log_retention_days
  secret_arns                = local.task_secrets
  environment                = local.task_environment
  artifact_bucket_arn        = module.storage.artifact_bucket_arn
  queue_metric               = local.queue_metric
}
