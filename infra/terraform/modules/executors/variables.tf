variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster the hosts join and the service runs in."
  type        = string
}

variable "cluster_capacity_providers" {
  description = "The cluster's capacity provider association; the service waits for it."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Private subnets of the hosts and tasks."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the hosts and tasks."
  type        = string
}

variable "image" {
  description = "Image of the executor target (registry URL and tag)."
  type        = string
}

variable "repository_arn" {
  description = "ECR repository the image is pulled from."
  type        = string
}

variable "instance_type" {
  description = "GPU instance type of the hosts."
  type        = string
  default     = "g5.xlarge"
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter naming the current ECS GPU-optimized AMI."
  type        = string
  default     = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
}

variable "root_volume_gib" {
  description = "Root volume of a host: images, Docker volumes, datasets in flight."
  type        = number
  default     = 200
}

variable "max_instances" {
  description = "Hosts the capacity provider may start."
  type        = number
  default     = 4
}

variable "max_workers" {
  description = "Executor tasks the queue-depth autoscaler may start."
  type        = number
  default     = 4
}

variable "gpus_per_worker" {
  description = "GPUs each executor task reserves."
  type        = number
  default     = 1
}

variable "cpu" {
  description = "CPU units of a task (1024 = one vCPU)."
  type        = number
  default     = 3072
}

variable "memory" {
  description = "Memory of a task in MiB; leave room for the ECS agent on the host."
  type        = number
  default     = 14336
}

variable "shared_memory_mib" {
  description = "/dev/shm of a task: PyTorch data loader workers pass batches through it."
  type        = number
  default     = 2048
}

variable "kms_key_arn" {
  description = "Key of the secrets, artifacts and log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps executor logs."
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
  description = "Artifact bucket the executors read and write."
  type        = string
}

variable "queue_metric" {
  description = "CloudWatch metric of waiting runs the executors scale on, and of runs in progress."
  type = object({
    namespace      = string
    queued         = string
    running        = string
    dimension_name = string
    resource_class = string
  })
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds between two scale-outs: about a cold start (GPU host boot and image pull)."
  type        = number
  default     = 300
}

variable "idle_minutes" {
  description = "Minutes with no waiting and no running run before the executors scale to zero."
  type        = number
  default     = 15
}
