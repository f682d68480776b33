variable "name" {
  description = "Prefix of every resource name."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts the images."
  type        = string
}

variable "images_kept" {
  description = "Images each repository keeps; older ones expire."
  type        = number
  default     = 30
}
