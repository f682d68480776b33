variable "name" {
  description = "Name of the deployment; prefixes every resource (lowercase letters, digits, hyphens)."
  type        = string
  default     = "ptw"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "2 to 21 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "certificate_arn" {
  description = "ACM certificate (in var.region) for the HTTPS listener, covering the API's domain name."
  type        = string
}

variable "image_tag" {
  description = "Tag of both images in the deployment's ECR repositories (tags are immutable)."
  type        = string
  default     = "0.1.0"
}

variable "availability_zones" {
  description = "Availability zones of var.region to use (at least two; check the GPU instance type is offered in them)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps every log group of the deployment."
  type        = number
  default     = 365
}

variable "alb_idle_timeout" {
  description = "Seconds an idle client connection stays open (WebSocket subscriptions)."
  type        = number
  default     = 3600
}

variable "deletion_protection" {
  description = "Protect the load balancer and the database from deletion."
  type        = bool
  default     = true
}

variable "api_desired_count" {
  description = "API tasks at all times (at least 2)."
  type        = number
  default     = 2
}

variable "api_max_count" {
  description = "API tasks under CPU load at most."
  type        = number
  default     = 6
}

variable "api_cpu" {
  description = "CPU units of an API task."
  type        = number
  default     = 1024
}

variable "api_memory" {
  description = "Memory of an API task in MiB."
  type        = number
  default     = 2048
}

variable "executor_instance_type" {
  description = "GPU instance type of the executor hosts."
  type        = string
  default     = "g5.xlarge"
}

variable "executor_max_instances" {
  description = "GPU hosts at most (the Auto Scaling group's minimum is 0)."
  type        = number
  default     = 4
}

variable "executor_max_workers" {
  description = "Executor tasks at most (one GPU each by default)."
  type        = number
  default     = 4
}

variable "executor_gpus_per_worker" {
  description = "GPUs each executor task reserves."
  type        = number
  default     = 1
}

variable "executor_cpu" {
  description = "CPU units of an executor task."
  type        = number
  default     = 3072
}

variable "executor_memory" {
  description = "Memory of an executor task in MiB."
  type        = number
  default     = 14336
}

variable "executor_idle_minutes" {
  description = "Minutes without GPU work before the executors scale to zero."
  type        = number
  default     = 15
}

variable "queue_metric_namespace" {
  description = "CloudWatch namespace of the queue-depth metrics the API publishes."
  type        = string
  default     = "PTW"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_multi_az" {
  description = "A synchronous standby database in a second zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days automated database backups are kept (at least 7)."
  type        = number
  default     = 14
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "artifact_noncurrent_days" {
  description = "Days an overwritten or deleted artifact version is kept."
  type        = number
  default     = 30
}
