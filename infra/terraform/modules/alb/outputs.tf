output "dns_name" {
  description = "DNS name of the load balancer; point the certificate's domain at it."
  value       = aws_lb.main.dns_name
}

output "zone_id" {
  description = "Route 53 zone of the load balancer, for an alias record."
  value       = aws_lb.main.zone_id
}

output "arn_suffix" {
  description = "ARN suffix of the load balancer, for CloudWatch metrics."
  value       = aws_lb.main.arn_suffix
}

output "target_group_arn" {
  description = "Target group of the API service."
  value       = aws_lb_target_group.api.arn
}

output "https_listener_arn" {
  description = "The HTTPS listener."
  value       = aws_lb_listener.https.arn
}
