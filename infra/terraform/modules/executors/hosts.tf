# GPU hosts: an Auto Scaling group of ECS GPU-optimized instances, from zero, driven by an ECS capacity
# provider (managed scaling), so hosts exist only while executor tasks need them.

data "aws_partition" "current" {}

data "aws_ssm_parameter" "gpu_ami" {
  name = var.ami_ssm_parameter
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "host" {
  name_prefix        = "${var.name}-gpu-host-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

# What the ECS agent needs to register the host and run tasks; SSM for operator shell access without SSH.
resource "aws_iam_role_policy_attachment" "host" {
  for_each = toset([
    "service-role/AmazonEC2ContainerServiceforEC2Role",
    "AmazonSSMManagedInstanceCore",
  ])
  role       = aws_iam_role.host.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/${each.key}"
}

resource "aws_iam_instance_profile" "host" {
  name_prefix = "${var.name}-gpu-host-"
  role        = aws_iam_role.host.name
}

resource "aws_launch_template" "host" {
  name_prefix            = "${var.name}-gpu-host-"
  image_id               = data.aws_ssm_parameter.gpu_ami.value
  instance_type          = var.instance_type
  vpc_security_group_ids = [var.security_group_id]
  update_default_version = true
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.host.arn
  }

  # IMDSv2 only, one hop: containers cannot reach the host's credentials; tasks use their own role.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # The stop timeout gives a draining worker time to checkpoint and hand its run back to the queue.
  user_data = base64encode(<<-EOT
    #!/bin/bash
    cat >> /etc/ecs/ecs.config <<'CONFIG'
    ECS_CLUSTER=${var.cluster_name}
    ECS_ENABLE_GPU_SUPPORT=true
    ECS_CONTAINER_STOP_TIMEOUT=120s
    ECS_ENABLE_SPOT_INSTANCE_DRAINING=true
    ECS_AWSVPC_BLOCK_IMDS=true
    CONFIG
  EOT
  )

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-gpu-host" }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${var.name}-gpu-host" }
  }
}

resource "aws_autoscaling_group" "hosts" {
  #checkov:skip=CKV2_AWS_15:GPU hosts serve no traffic: executors pull runs from the Redis queue, so there is no load balancer to attach.
  name_prefix           = "${var.name}-gpu-hosts-"
  min_size              = 0
  max_size              = var.max_instances
  vpc_zone_identifier   = var.subnet_ids
  health_check_type     = "EC2"
  protect_from_scale_in = true # required by managed termination protection: ECS decides which host leaves
  capacity_rebalance    = true

  launch_template {
    id      = aws_launch_template.host.id
    version = aws_launch_template.host.latest_version
  }

  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-gpu-host"
    propagate_at_launch = true
  }

  # The capacity provider sets the desired capacity.
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_ecs_capacity_provider" "gpu" {
  name = "${var.name}-gpu"

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.hosts.arn
    managed_termination_protection = "ENABLED"
    managed_draining               = "ENABLED"

    managed_scaling {
      status                    = "ENABLED"
      target_capacity           = 100
      minimum_scaling_step_size = 1
      maximum_scaling_step_size = var.max_instances
      instance_warmup_period    = 300
    }
  }
}
