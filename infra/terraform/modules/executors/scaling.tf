# Queue-depth autoscaling of the executor service, from and to zero.
#
# The API publishes, every minute, the runs waiting for a GPU worker (metric `queued`) and, when available,
# the runs in progress on one (metric `running`), both with the dimension ResourceClass=gpu. The API always
# runs, so the signal exists while no executor does. Step scaling rather than target tracking: target
# tracking multiplies the current count and so cannot leave zero.
#   scale out  waiting > 0 in a minute                 -> +1, +2 or +4 tasks by depth, then a cooldown
#                                                         of about one cold start (GPU host boot, image pull)
#   scale in   waiting + running = 0 for idle_minutes  -> exactly 0 tasks (ECS stops them with SIGTERM:
#                                                         the worker's graceful drain)
# The capacity provider then adds or removes GPU hosts to fit the tasks.

locals {
  dimensions = { (var.queue_metric.dimension_name) = var.queue_metric.resource_class }
}

resource "aws_appautoscaling_target" "executor" {
  service_namespace  = "ecs"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.executor.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = 0
  max_capacity       = var.max_workers
}

resource "aws_appautoscaling_policy" "scale_out" {
  name               = "${var.name}-executor-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.executor.service_namespace
  resource_id        = aws_appautoscaling_target.executor.resource_id
  scalable_dimension = aws_appautoscaling_target.executor.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = var.scale_out_cooldown_seconds
    metric_aggregation_type = "Maximum"

    # Bounds are offsets from the alarm threshold (0 waiting runs).
    step_adjustment {
      metric_interval_lower_bound = 0
      metric_interval_upper_bound = 2
      scaling_adjustment          = 1
    }
    step_adjustment {
      metric_interval_lower_bound = 2
      metric_interval_upper_bound = 8
      scaling_adjustment          = 2
    }
    step_adjustment {
      metric_interval_lower_bound = 8
      scaling_adjustment          = 4
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "runs_waiting" {
  alarm_name          = "${var.name}-gpu-runs-waiting"
  alarm_description   = "Runs wait for a GPU executor: add executors."
  namespace           = var.queue_metric.namespace
  metric_name         = var.queue_metric.queued
  dimensions          = local.dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  # No datapoint means no publisher, not an empty queue: change nothing.
  treat_missing_data = "missing"
  alarm_actions      = [aws_appautoscaling_policy.scale_out.arn]
}

resource "aws_appautoscaling_policy" "scale_to_zero" {
  name               = "${var.name}-executor-scale-to-zero"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.executor.service_namespace
  resource_id        = aws_appautoscaling_target.executor.resource_id
  scalable_dimension = aws_appautoscaling_target.executor.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    cooldown                = 60
    metric_aggregation_type = "Maximum"

    step_adjustment {
      metric_interval_upper_bound = 0
      scaling_adjustment          = 0
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "gpu_idle" {
  alarm_name          = "${var.name}-gpu-idle"
  alarm_description   = "No GPU run waiting or running for ${var.idle_minutes} minutes: scale executors to zero."
  comparison_operator = "LessThanOrEqualToThreshold"
  threshold           = 0
  evaluation_periods  = var.idle_minutes
  datapoints_to_alarm = var.idle_minutes
  treat_missing_data  = "missing"
  alarm_actions       = [aws_appautoscaling_policy.scale_to_zero.arn]

  metric_query {
    id          = "demand"
    expression  = "queued + FILL(running, 0)"
    label       = "GPU runs waiting or running"
    return_data = true
  }

  metric_query {
    id = "queued"
    metric {
      namespace   = var.queue_metric.namespace
      metric_name = var.queue_metric.queued
      dimensions  = local.dimensions
      stat        = "Maximum"
      period      = 60
    }
  }

  # Optional: without it, `FILL` reads it as 0 and the executors scale in on the waiting count alone.
  metric_query {
    id = "running"
    metric {
      namespace   = var.queue_metric.namespace
      metric_name = var.queue_metric.running
      dimensions  = local.dimensions
      stat        = "Maximum"
      period      = 60
    }
  }
}
