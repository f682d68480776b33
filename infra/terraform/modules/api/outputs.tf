output "service_name" {
  description = "Name of the API service."
  value       = aws_ecs_service.api.name
}

output "admin_task_definition_arn" {
  description = "One-off task for `ptw db upgrade` and `ptw keys create`."
  value       = aws_ecs_task_definition.admin.arn
}

output "log_group_name" {
  description = "Log group of the API and admin tasks."
  value       = aws_cloudwatch_log_group.api.name
}
