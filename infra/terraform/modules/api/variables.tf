variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster of the service."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the tasks."
  type        = string
}

variable "target_group_arn" {
  description = "Load balancer target group the tasks register with."
  type        = string
}

variable "image" {
  description = "Image of the api target (registry URL and tag)."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository the image is pulled from."
  type        = string
}

variable "app_port" {
  description = "Port the container listens on."
  type        = number
}

variable "cpu" {
  description = "CPU units of a task (1024 = one vCPU)."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Memory of a task in MiB."
  type        = number
  default     = 2048
}

variable "desired_count" {
  description = "Tasks running at all times; the autoscaler never goes below this."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 2
    error_message = "Run at least two API tasks, so one can fail or be replaced without an outage."
  }
}

variable "max_count" {
  description = "Tasks the CPU autoscaler may grow to."
  type        = number
  default     = 6
}

variable "kms_key_arn" {
  description = "Key of the secrets, artifacts and log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the API logs."
  type        = number
}

variable "secret_arns" {
  description = "Secrets injected as environment variables: variable name => secret ARN."
  type        = map(string)
}

variable "environment" {
  description = "Plain environment variables of the container."
  type        = map(string)
  default     = {}
}

variable "artifact_bucket_arn" {
  description = "Artifact bucket the API reads and writes."
  type        = string
}

variable "metric_namespace" {
  description = "CloudWatch namespace the API may publish metrics to (the queue-depth signal)."
  type        = string
}
