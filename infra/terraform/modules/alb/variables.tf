variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "subnet_ids" {
  description = "Public subnets of the load balancer."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the load balancer."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.3 and 1.2 only)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "idle_timeout" {
  description = "Seconds an idle connection stays open; GraphQL subscriptions over WebSocket need it long."
  type        = number
  default     = 3600
}

variable "app_port" {
  description = "Port the API container listens on."
  type        = number
}

variable "health_check_path" {
  description = "Path the target group probes."
  type        = string
  default     = "/healthz"
}

variable "log_bucket" {
  description = "Bucket that receives the access logs."
  type        = string
}

variable "log_prefix" {
  description = "Prefix of the access logs in log_bucket."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Key that encrypts the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps WAF logs."
  type        = number
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes one client address may send before WAF blocks it."
  type        = number
  default     = 3000
}
