# Container registries of the two images the Dockerfile builds (targets api and executor).

locals {
  repositories = toset(["api", "executor"])
}

resource "aws_ecr_repository" "main" {
  for_each = local.repositories
  name     = "${var.name}/${each.key}"
  # Tags are release versions: a tag never moves, so what a task runs is what was reviewed.
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "main" {
  for_each   = aws_ecr_repository.main
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.images_kept} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.images_kept
      }
      action = { type = "expire" }
    }]
  })
}
