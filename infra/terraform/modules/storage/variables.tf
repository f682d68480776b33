variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts the artifact bucket."
  type        = string
}

variable "noncurrent_artifact_days" {
  description = "Days an overwritten or deleted artifact version is kept before it expires."
  type        = number
  default     = 30
}

variable "access_log_days" {
  description = "Days load balancer and S3 access logs are kept."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (test stacks only)."
  type        = bool
  default     = false
}
