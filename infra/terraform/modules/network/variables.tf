variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "cidr_block" {
  description = "Address range of the VPC."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones (names) to spread subnets over."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "At least two availability zones: the ALB, RDS Multi-AZ and Redis failover need them."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper) instead of one per zone (survives a zone outage)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Key that encrypts the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the VPC flow logs."
  type        = number
}

variable "app_port" {
  description = "Port the API container listens on."
  type        = number
}

variable "database_port" {
  description = "PostgreSQL port."
  type        = number
}

variable "redis_port" {
  description = "Redis port."
  type        = number
}
