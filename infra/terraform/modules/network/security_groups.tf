# Every security group of the deployment and every rule between them, in one place: who may reach what is
# read here, and no module has to refer to another's group (which would make module cycles).

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:Attached to aws_lb.main in modules/alb through this module's alb_security_group_id output; checkov does not follow module outputs.
  name_prefix = "${var.name}-alb-"
  description = "Load balancer: HTTPS from the internet, HTTP only to redirect"
  vpc_id      = aws_vpc.main.id
  lifecycle { create_before_destroy = true }
}

resource "aws_security_group" "api" {
  #checkov:skip=CKV2_AWS_5:Attached to the API service and admin task in modules/api through this module's api_security_group_id output; checkov does not follow module outputs.
  name_prefix = "${var.name}-api-"
  description = "API tasks: the app port from the load balancer"
  vpc_id      = aws_vpc.main.id
  lifecycle { create_before_destroy = true }
}

resource "aws_security_group" "executors" {
  #checkov:skip=CKV2_AWS_5:Attached to the GPU launch template and executor service in modules/executors through this module's executors_security_group_id output; checkov does not follow module outputs.
  name_prefix = "${var.name}-executors-"
  description = "GPU executor hosts and tasks: no inbound traffic"
  vpc_id      = aws_vpc.main.id
  lifecycle { create_before_destroy = true }
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:Attached to aws_db_instance.main in modules/database through this module's database_security_group_id output; checkov does not follow module outputs.
  name_prefix = "${var.name}-database-"
  description = "PostgreSQL: from API and executor tasks only"
  vpc_id      = aws_vpc.main.id
  lifecycle { create_before_destroy = true }
}

resource "aws_security_group" "cache" {
  #checkov:skip=CKV2_AWS_5:Attached to the replication group in modules/cache through this module's cache_security_group_id output; checkov does not follow module outputs.
  name_prefix = "${var.name}-cache-"
  description = "Redis: from API and executor tasks only"
  vpc_id      = aws_vpc.main.id
  lifecycle { create_before_destroy = true }
}

# --- load balancer
resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS and WebSocket clients"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a redirect to HTTPS (the HTTP listener has no forward action).
  security_group_id = aws_security_group.alb.id
  description       = "HTTP, redirected to HTTPS"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_api" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward requests and health checks to API tasks"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.api.id
}

# --- API tasks
resource "aws_vpc_security_group_ingress_rule" "api_from_alb" {
  security_group_id            = aws_security_group.api.id
  description                  = "Requests and health checks from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

# --- API and executors reach PostgreSQL, Redis and AWS APIs (ECR, Secrets Manager, S3, CloudWatch) over TLS.
locals {
  task_groups = {
    api       = aws_security_group.api.id
    executors = aws_security_group.executors.id
  }
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each          = local.task_groups
  security_group_id = each.value
  description       = "AWS APIs and image registries over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_database" {
  for_each                     = local.task_groups
  security_group_id            = each.value
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_cache" {
  for_each                     = local.task_groups
  security_group_id            = each.value
  description                  = "Redis"
  ip_protocol                  = "tcp"
  from_port                    = var.redis_port
  to_port                      = var.redis_port
  referenced_security_group_id = aws_security_group.cache.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  for_each                     = local.task_groups
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "cache_from_tasks" {
  for_each                     = local.task_groups
  security_group_id            = aws_security_group.cache.id
  description                  = "Redis from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = var.redis_port
  to_port                      = var.redis_port
  referenced_security_group_id = each.value
}
