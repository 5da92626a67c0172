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

variable "schedules" {
  description = "Cloud Scheduler jobs by name: cron schedule (UTC), description, topic the tick is published to."
  type = map(object({
    description = string
    schedule    = string
    topic       = string
  }))
}

variable "notification_channels" {
  description = "Notification channel ids every alert policy notifies."
  type        = list(string)
  default     = []
}

variable "runbook_url" {
  description = "URL of docs/runbook.md; alerts link to its sections."
  type        = string
}

variable "webhook_service" {
  description = "Cloud Run service of the payment provider's webhook, the service the availability SLO is about."
  type        = string
}

variable "webhook_slo_goal" {
  description = "Availability goal of the webhook over a rolling 28 days."
  type        = number
  default     = 0.9995
}

variable "payment_failures_threshold" {
  description = "Payment failures (as reported by the provider's webhook) within payment_failures_window that open an incident."
  type        = number
}

variable "payment_failures_window" {
  description = "Window over which payment failures are counted, in seconds (e.g. 900s)."
  type        = string
  default     = "900s"
}

variable "delivery" {
  description = "Push delivery policy (topology.yaml: delivery), for the Knative bridge."
  type = object({
    ack_deadline_seconds  = number
    max_delivery_attempts = number
    minimum_backoff       = string
    maximum_backoff       = string
  })
}

variable "knative_broker_url" {
  description = "Ingress URL of the fulfillment Broker on a Knative cluster; when set, every topic is pushed there (knative.tf)."
  type        = string
  default     = ""
}
