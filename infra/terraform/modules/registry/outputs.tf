output "repository_urls" {
  description = "Registry URL of each image: api, executor."
  value       = { for key, repo in aws_ecr_repository.main : key => repo.repository_url }
}

output "repository_arns" {
  description = "ARN of each repository: api, executor."
  value       = { for key, repo in aws_ecr_repository.main : key => repo.arn }
}
