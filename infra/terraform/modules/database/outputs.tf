output "address" {
  description = "Host name of the instance."
  value       = aws_db_instance.main.address
}

output "port" {
  description = "Port of the instance."
  value       = aws_db_instance.main.port
}

output "identifier" {
  description = "Identifier of the instance."
  value       = aws_db_instance.main.identifier
}
