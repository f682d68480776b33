"""Security properties of the AWS deployment, asserted on the parsed Terraform of infra/terraform."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.terraform_stack import TERRAFORM_DIR, Stack, stack

COMPONENTS = {
    "network",
    "alb",
    "api",
    "executors",
    "database",
    "cache",
    "storage",
    "secrets",
    "cluster",
    "registry",
}


def one(module_resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(module_resources) == 1, sorted(module_resources)
    return next(iter(module_resources.values()))


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource body (hcl2 gives blocks as lists)."""
    blocks = body[name]
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    found: dict[str, Any] = blocks[0]
    return found


def from_secrets_module(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${module.secrets.")


# --- layout ---------------------------------------------------------------------------------------------


def test_every_component_is_a_module_called_by_the_root() -> None:
    s = stack()
    assert set(s.modules) == COMPONENTS
    for name, module in s.modules.items():
        assert module.path == (TERRAFORM_DIR / "modules" / name).resolve()
        for required in ("variables.tf", "outputs.tf"):
            assert (module.path / required).is_file(), f"{name}/{required}"
        assert module.resources, name


def test_terraform_and_providers_are_pinned() -> None:
    settings = stack().root.terraform
    assert len(settings) == 1
    assert settings[0]["required_version"].startswith(">= 1.5")
    providers = block(settings[0], "required_providers")
    for name in ("aws", "random"):
        spec = providers[name]
        assert spec["source"] == f"hashicorp/{name}"
        assert re.match(r"^~> \d+\.\d+$", spec["version"]), spec["version"]


def test_every_variable_and_output_is_described() -> None:
    for name, module in stack().all_modules():
        for variable, spec in module.variables.items():
            assert spec.get("description"), f"{name}: var.{variable}"
            assert spec.get("type"), f"{name}: var.{variable}"


# --- load balancer --------------------------------------------------------------------------------------


def test_https_listener_allows_tls_1_2_and_newer_only() -> None:
    s = stack()
    listeners = s.module("alb").of_type("aws_lb_listener")
    https = listeners["https"]
    assert https["protocol"] == "HTTPS" and https["port"] == 443
    policy = s.resolve("alb", https["ssl_policy"])
    # The AWS policies that refuse TLS 1.0 and 1.1.
    assert re.match(r"^ELBSecurityPolicy-(TLS13-1-[23]-|TLS-1-2-|FS-1-2-)", policy), policy
    assert block(https, "default_action")["type"] == "forward"


def test_http_listener_only_redirects_to_https() -> None:
    http = stack().module("alb").of_type("aws_lb_listener")["http"]
    assert http["protocol"] == "HTTP" and http["port"] == 80
    action = block(http, "default_action")
    assert action["type"] == "redirect"
    redirect = block(action, "redirect")
    assert redirect["protocol"] == "HTTPS" and redirect["status_code"] == "HTTP_301"


def test_load_balancer_drops_bad_headers_logs_and_keeps_websockets_open() -> None:
    s = stack()
    alb = s.module("alb")
    lb = one(alb.of_type("aws_lb"))
    assert lb["internal"] is False
    assert lb["drop_invalid_header_fields"] is True
    assert s.resolve("alb", lb["enable_deletion_protection"]) is True
    assert s.resolve("alb", lb["idle_timeout"]) >= 900, "subscriptions idle for minutes between events"
    logs = block(lb, "access_logs")
    assert logs["enabled"] is True
    assert s.resolve("alb", logs["bucket"]) == "${module.storage.log_bucket_name}"
    health = block(one(alb.of_type("aws_lb_target_group")), "health_check")
    assert s.resolve("alb", health["path"]) == "/healthz"
    association = one(alb.of_type("aws_wafv2_web_acl_association"))
    assert association["resource_arn"] == "${aws_lb.main.arn}"


# --- database, cache, storage, secrets ------------------------------------------------------------------


def test_database_is_private_encrypted_and_backed_up() -> None:
    s = stack()
    db = one(s.module("database").of_type("aws_db_instance"))
    assert db["storage_encrypted"] is True
    assert s.resolve("database", db["kms_key_id"]) == "${module.secrets.kms_key_arn}"
    assert db["publicly_accessible"] is False
    assert s.resolve("database", db["backup_retention_period"]) >= 7
    assert s.resolve("database", db["multi_az"]) is True
    assert s.resolve("database", db["deletion_protection"]) is True
    assert db["skip_final_snapshot"] is False
    assert db["iam_database_authentication_enabled"] is True
    assert db["performance_insights_enabled"] is True
    assert s.resolve("database", db["performance_insights_kms_key_id"]) == "${module.secrets.kms_key_arn}"
    assert set(db["enabled_cloudwatch_logs_exports"]) >= {"postgresql"}
    assert from_secrets_module(s.resolve("database", db["password"]))


def test_database_refuses_clients_without_tls() -> None:
    group = one(stack().module("database").of_type("aws_db_parameter_group"))
    parameters = {p["name"]: p["value"] for p in group["parameter"]}
    assert parameters["rds.force_ssl"] == "1"


def test_backup_retention_below_seven_days_is_rejected() -> None:
    validation = stack().module("database").variables["backup_retention_days"]["validation"]
    assert any(">= 7" in rule["condition"] for rule in validation)


def test_redis_encrypts_in_transit_and_at_rest_and_requires_auth() -> None:
    s = stack()
    group = one(s.module("cache").of_type("aws_elasticache_replication_group"))
    assert group["transit_encryption_enabled"] is True
    assert group["at_rest_encryption_enabled"] is True
    assert s.resolve("cache", group["kms_key_id"]) == "${module.secrets.kms_key_arn}"
    assert from_secrets_module(s.resolve("cache", group["auth_token"]))
    assert group["automatic_failover_enabled"] is True and group["multi_az_enabled"] is True


def test_artifact_bucket_is_kms_encrypted_versioned_and_not_public() -> None:
    s = stack()
    storage = s.module("storage")
    bucket_ref = "${aws_s3_bucket.artifacts.id}"

    encryption = storage.of_type("aws_s3_bucket_server_side_encryption_configuration")["artifacts"]
    assert encryption["bucket"] == bucket_ref
    default = block(block(encryption, "rule"), "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"
    assert s.resolve("storage", default["kms_master_key_id"]) == "${module.secrets.kms_key_arn}"

    versioning = storage.of_type("aws_s3_bucket_versioning")["artifacts"]
    assert versioning["bucket"] == bucket_ref
    assert block(versioning, "versioning_configuration")["status"] == "Enabled"

    public = storage.of_type("aws_s3_bucket_public_access_block")["artifacts"]
    assert public["bucket"] == bucket_ref
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert public[setting] is True, setting


@pytest.mark.parametrize("bucket", ["artifacts", "logs"])
def test_buckets_refuse_plain_http(bucket: str) -> None:
    policy = stack().module("storage").data[("aws_iam_policy_document", bucket)]
    denials = [st for st in policy["statement"] if st.get("effect") == "Deny"]
    conditions = [c for st in denials for c in st["condition"]]
    assert {"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]} in conditions


def test_every_bucket_blocks_public_access_and_is_versioned() -> None:
    storage = stack().module("storage")
    buckets = set(storage.of_type("aws_s3_bucket"))
    assert buckets == {"artifacts", "logs"}
    assert set(storage.of_type("aws_s3_bucket_public_access_block")) == buckets
    assert set(storage.of_type("aws_s3_bucket_versioning")) == buckets
    assert set(storage.of_type("aws_s3_bucket_server_side_encryption_configuration")) == buckets


def test_secrets_use_the_rotating_customer_key() -> None:
    secrets = stack().module("secrets")
    key = one(secrets.of_type("aws_kms_key"))
    assert key["enable_key_rotation"] is True
    stored = secrets.of_type("aws_secretsmanager_secret")
    assert {"database_url", "redis_url", "database_password", "redis_auth_token", "api_bootstrap_key"} <= set(
        stored
    )
    for name, secret in stored.items():
        assert secret["kms_key_id"] == "${aws_kms_key.main.arn}", name


def test_connection_urls_require_tls() -> None:
    versions = stack().module("secrets").of_type("aws_secretsmanager_secret_version")
    assert versions["database_url"]["secret_string"].endswith("?ssl=require")
    assert versions["redis_url"]["secret_string"].startswith("rediss://")


def test_tasks_get_credentials_from_secrets_manager_only() -> None:
    s = stack()
    secrets = s.resolve("root", "${local.task_secrets}")
    assert set(secrets) == {"PTW_DATABASE_URL", "PTW_REDIS_URL"}
    assert all(from_secrets_module(arn) for arn in secrets.values())
    environment = s.resolve("root", "${local.task_environment}")
    assert not {"PTW_DATABASE_URL", "PTW_REDIS_URL"} & set(environment)
    for name in ("api", "executors"):
        assert s.root.calls[name]["secret_arns"] == "${local.task_secrets}"


# --- compute --------------------------------------------------------------------------------------------


def test_api_runs_at_least_two_fargate_tasks_in_private_subnets() -> None:
    s = stack()
    api = s.module("api")
    service = one(api.of_type("aws_ecs_service"))
    assert s.resolve("api", service["desired_count"]) >= 2
    assert service["launch_type"] == "FARGATE"
    assert block(service, "network_configuration")["assign_public_ip"] is False
    assert s.resolve("api", block(service, "network_configuration")["subnets"]) == (
        "${module.network.private_subnet_ids}"
    )
    target = api.of_type("aws_appautoscaling_target")["api"]
    assert target["min_capacity"] == "${var.desired_count}"
    assert any(">= 2" in rule["condition"] for rule in api.variables["desired_count"]["validation"])


def test_executor_hosts_are_gpu_instances_that_start_from_zero() -> None:
    s = stack()
    executors = s.module("executors")
    group = one(executors.of_type("aws_autoscaling_group"))
    assert group["min_size"] == 0
    assert s.resolve("executors", group["max_size"]) >= 1

    ami = executors.data[("aws_ssm_parameter", "gpu_ami")]
    assert "/gpu/" in s.resolve("executors", ami["name"])

    template = one(executors.of_type("aws_launch_template"))
    assert template["image_id"] == "${data.aws_ssm_parameter.gpu_ami.value}"
    metadata = block(template, "metadata_options")
    assert metadata["http_tokens"] == "required" and metadata["http_put_response_hop_limit"] == 1
    ebs = block(block(template, "block_device_mappings"), "ebs")
    assert ebs["encrypted"] is True

    provider = one(executors.of_type("aws_ecs_capacity_provider"))
    asg_provider = block(provider, "auto_scaling_group_provider")
    assert block(asg_provider, "managed_scaling")["status"] == "ENABLED"


def test_executors_scale_on_queue_depth_to_and_from_zero() -> None:
    s = stack()
    executors = s.module("executors")
    target = executors.of_type("aws_appautoscaling_target")["executor"]
    assert target["min_capacity"] == 0

    metric = s.resolve("executors", "${var.queue_metric}")
    assert s.resolve("root", metric["namespace"]) == "PTW"
    assert metric["queued"] == "QueueDepth"
    assert (metric["dimension_name"], metric["resource_class"]) == ("ResourceClass", "gpu")

    alarms = executors.of_type("aws_cloudwatch_metric_alarm")
    waiting = alarms["runs_waiting"]
    assert waiting["metric_name"] == "${var.queue_metric.queued}"
    assert waiting["comparison_operator"] == "GreaterThanThreshold" and waiting["threshold"] == 0
    assert waiting["alarm_actions"] == ["${aws_appautoscaling_policy.scale_out.arn}"]
    idle = alarms["gpu_idle"]
    assert idle["comparison_operator"] == "LessThanOrEqualToThreshold" and idle["threshold"] == 0
    assert idle["alarm_actions"] == ["${aws_appautoscaling_policy.scale_to_zero.arn}"]

    policies = executors.of_type("aws_appautoscaling_policy")
    to_zero = block(policies["scale_to_zero"], "step_scaling_policy_configuration")
    assert to_zero["adjustment_type"] == "ExactCapacity"
    assert [step["scaling_adjustment"] for step in to_zero["step_adjustment"]] == [0]
    out = block(policies["scale_out"], "step_scaling_policy_configuration")
    assert all(step["scaling_adjustment"] > 0 for step in out["step_adjustment"])


def test_only_the_api_may_publish_the_queue_metric() -> None:
    s = stack()
    task_policy = s.module("api").data[("aws_iam_policy_document", "task")]
    publish = [st for st in task_policy["statement"] if st["actions"] == ["cloudwatch:PutMetricData"]]
    assert len(publish) == 1
    assert block(publish[0], "condition")["variable"] == "cloudwatch:namespace"
    assert "PTW_CLOUDWATCH_NAMESPACE" in s.root.calls["api"]["environment"]


@pytest.mark.parametrize(
    ("module", "resource"), [("api", "api"), ("api", "admin"), ("executors", "executor")]
)
def test_containers_run_as_non_root_on_a_read_only_root(module: str, resource: str) -> None:
    definition = stack().module(module).of_type("aws_ecs_task_definition")[resource]
    containers = definition["container_definitions"]
    assert 'user = "10001:10001"' in containers
    assert "readonlyRootFilesystem = true" in containers
    assert "privileged = false" in containers
    assert definition["execution_role_arn"] != definition["task_role_arn"]


# --- every component ------------------------------------------------------------------------------------


def test_every_log_group_has_retention_and_the_customer_key() -> None:
    s = stack()
    found = 0
    for name, module in s.all_modules():
        for group_name, group in module.of_type("aws_cloudwatch_log_group").items():
            found += 1
            where = f"{name}.{group_name}"
            assert s.resolve(name, group.get("retention_in_days")) >= 365, where
            assert s.resolve(name, group.get("kms_key_id")) == "${module.secrets.kms_key_arn}", where
    assert found >= 7  # flow logs, WAF, RDS exports, Redis slow log, ECS Exec, API, executors


def test_no_security_group_opens_more_than_web_ports_to_the_internet() -> None:
    network = stack().module("network")
    for name, rule in network.of_type("aws_vpc_security_group_ingress_rule").items():
        if rule.get("cidr_ipv4") == "0.0.0.0/0":
            assert rule["security_group_id"] == "${aws_security_group.alb.id}", name
            assert (rule["from_port"], rule["to_port"]) in {(80, 80), (443, 443)}, name
    for name, rule in network.of_type("aws_vpc_security_group_egress_rule").items():
        assert rule["ip_protocol"] != "-1", name
        if rule.get("cidr_ipv4") == "0.0.0.0/0":
            assert (rule["from_port"], rule["to_port"]) == (443, 443), name
    assert network.of_type("aws_security_group")
    for name, group in network.of_type("aws_security_group").items():
        assert "ingress" not in group and "egress" not in group, f"{name}: rules belong in rule resources"


def test_every_checkov_skip_states_its_reason() -> None:
    skips = 0
    for tf in TERRAFORM_DIR.rglob("*.tf"):
        for line in tf.read_text().splitlines():
            if "checkov:skip" in line:
                skips += 1
                match = re.search(r"#checkov:skip=(CKV2?_AWS_\d+):(.+)$", line.strip())
                assert match, f"{tf.name}: {line.strip()}"
                assert len(match.group(2).split()) >= 5, f"{tf.name}: a reason, not a label: {line.strip()}"
    assert skips > 0


def test_unresolvable_variable_is_reported() -> None:
    s = Stack()
    s.root.calls["database"].pop("password")
    with pytest.raises(LookupError, match=r"var\.password"):
        s.resolve("database", "${var.password}")
