# The executor service: `ptw worker` tasks, one GPU each, placed on the GPU capacity provider. Its desired
# count is set by the queue-depth autoscaling in scaling.tf, from zero.

data "aws_region" "current" {}

resource "aws_cloudwatch_log_group" "executor" {
  name              = "/ecs/${var.name}/executor"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "executor" {
  family                   = "${var.name}-executor"
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  # Docker volumes on the host's encrypted root volume, one per task: the only writable paths.
  volume {
    name = "data"
    docker_volume_configuration {
      scope  = "task"
      driver = "local"
    }
  }
  volume {
    name = "tmp"
    docker_volume_configuration {
      scope  = "task"
      driver = "local"
    }
  }

  container_definitions = jsonencode([{
    name                   = "executor"
    image                  = var.image
    essential              = true
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    privileged             = false
    command                = ["ptw", "worker"]
    cpu                    = var.cpu
    memory                 = var.memory
    resourceRequirements   = [{ type = "GPU", value = tostring(var.gpus_per_worker) }]
    environment = [for key, value in merge(var.environment, {
      PTW_DATA_DIR = "/var/lib/ptw"
      AWS_REGION   = data.aws_region.current.name
    }) : { name = key, value = value }]
    secrets = [for key, arn in var.secret_arns : { name = key, valueFrom = arn }]
    mountPoints = [
      { sourceVolume = "data", containerPath = "/var/lib/ptw", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    linuxParameters = {
      initProcessEnabled = true
      sharedMemorySize   = var.shared_memory_mib
    }
    # SIGTERM starts the worker's graceful drain; ECS allows at most 120 s before SIGKILL.
    stopTimeout = 120
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.executor.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "executor"
      }
    }
  }])
}

resource "aws_ecs_service" "executor" {
  name                    = "${var.name}-executor"
  cluster                 = var.cluster_name
  task_definition         = aws_ecs_task_definition.executor.arn
  desired_count           = 0
  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  enable_execute_command  = false
  wait_for_steady_state   = false

  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.gpu.name
    weight            = 1
    base              = 0
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_id]
    assign_public_ip = false
  }

  # Spread over zones first, then pack tasks onto as few GPU hosts as possible.
  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }
  ordered_placement_strategy {
    type  = "binpack"
    field = "memory"
  }

  # The queue-depth autoscaler owns the running count.
  lifecycle {
    ignore_changes = [desired_count]
  }

  # The capacity provider must belong to the cluster before a service can use it.
  depends_on = [terraform_data.cluster_capacity_providers]
}

# Carries the cluster's capacity provider association into this module's dependency graph.
resource "terraform_data" "cluster_capacity_providers" {
  input = var.cluster_capacity_providers
}
