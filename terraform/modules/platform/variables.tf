variable "project" {
  type = string
}

variable "region" {
  description = "Location of the Firestore database and the Scheduler job."
  type        = string
}

variable "topics" {
  description = "Topic names (topology.yaml: topics)."
  type        = list(string)
}

variable "pull_subscriptions" {
  description = "Pull subscription name => topic name (topology.yaml: pull_subscriptions)."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Secret Manager secret ids to create; their values are added out of band."
  type        = list(string)
}

variable "renewal_schedule" {
  description = "Cron schedule (UTC) of the renewal tick."
  type        = string
  default     = "0 * * * *"
}
