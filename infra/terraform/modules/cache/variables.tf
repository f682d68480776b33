variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache nodes."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the cache nodes."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts data at rest and the slow-log group."
  type        = string
}

variable "auth_token" {
  description = "AUTH token clients present (from Secrets Manager)."
  type        = string
  sensitive   = true
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "parameter_group_name" {
  description = "Parameter group matching engine_version."
  type        = string
  default     = "default.redis7"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.small"
}

variable "replicas" {
  description = "Read replicas beside the primary; at least one for automatic failover."
  type        = number
  default     = 1

  validation {
    condition     = var.replicas >= 1
    error_message = "Automatic failover needs at least one replica."
  }
}

variable "port" {
  description = "Redis port."
  type        = number
}

variable "snapshot_retention_days" {
  description = "Days daily snapshots are kept."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the slow log."
  type        = number
}
