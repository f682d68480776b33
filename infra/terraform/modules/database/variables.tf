variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the instance."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the instance."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts storage, Performance Insights and log groups."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major (or major.minor) version; minor upgrades apply automatically."
  type        = string
  default     = "16"
}

variable "parameter_group_family" {
  description = "Parameter group family matching engine_version."
  type        = string
  default     = "postgres16"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 50
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500
}

variable "multi_az" {
  description = "A synchronous standby in a second availability zone."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days automated backups are kept."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7
    error_message = "Keep automated backups at least 7 days."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance."
  type        = bool
  default     = true
}

variable "username" {
  description = "Master user name."
  type        = string
}

variable "password" {
  description = "Master password."
  type        = string
  sensitive   = true
}

variable "database_name" {
  description = "Database created with the instance."
  type        = string
}

variable "port" {
  description = "PostgreSQL port."
  type        = number
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the database logs."
  type        = number
}

variable "slow_query_ms" {
  description = "Statements slower than this many milliseconds are logged."
  type        = number
  default     = 1000
}
