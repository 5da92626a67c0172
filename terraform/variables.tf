variable "project" {
  description = "GCP project id."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run services, the Firestore database and the Scheduler job."
  type        = string
}

variable "images" {
  description = <<-EOT
    Image of each function by name, pinned by digest: the output of
    `ko build ./functions/<name>/cmd/gcp`. Release-specific, so passed by the
    deploy (-var-file of a generated file), not set in environments/*.tfvars.
  EOT
  type        = map(string)

  validation {
    condition     = alltrue([for image in values(var.images) : strcontains(image, "@sha256:")])
    error_message = "Pin every image by digest (…@sha256:…)."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every function (debug, info, warn, error)."
  type        = string
  default     = "info"
}

variable "min_instances" {
  description = "Instances kept warm, by function name (others scale to zero)."
  type        = map(number)
  default     = {}
}

variable "gitlab_url" {
  description = "GitLab instance the provisioning function calls."
  type        = string
}

variable "salesforce_instance_url" {
  description = "Salesforce instance crm-push writes to."
  type        = string
}

variable "pagerduty_events_url" {
  description = "PagerDuty Events API v2 endpoint."
  type        = string
  default     = "https://events.pagerduty.com/v2/enqueue"
}

variable "alert_threshold" {
  description = "Failed payments within alert_window that page."
  type        = number
}

variable "alert_window" {
  description = "Window over which failed payments are counted (Go duration, e.g. 15m)."
  type        = string
}

variable "renewal_lead_time" {
  description = "How long before a term ends renewal charges (Go duration, e.g. 72h)."
  type        = string
}
