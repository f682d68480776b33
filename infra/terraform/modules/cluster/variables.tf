variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts ECS Exec sessions and their log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps ECS Exec session logs."
  type        = number
}

variable "extra_capacity_providers" {
  description = "Capacity providers beside Fargate (the GPU executors' one)."
  type        = list(string)
  default     = []
}
