variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "kms_deletion_window_days" {
  description = "Days a scheduled deletion of the key can still be cancelled."
  type        = number
  default     = 30
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "database_username" {
  description = "Master user of the PostgreSQL instance."
  type        = string
}

variable "database_name" {
  description = "Database the application connects to."
  type        = string
}

variable "database_address" {
  description = "Host name of the PostgreSQL instance; empty until the database exists."
  type        = string
}

variable "database_port" {
  description = "Port of the PostgreSQL instance."
  type        = number
}

variable "redis_address" {
  description = "Primary endpoint of the Redis replication group."
  type        = string
}

variable "redis_port" {
  description = "Port of the Redis replication group."
  type        = number
}
