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
    Image a function's service is created with, by name, pinned by digest
    (`make image FUNCTION=<name> REGISTRY=...`). After creation `make deploy`
    owns the image and the traffic (terraform ignores both), so this only
    matters for the first apply; functions not listed start on placeholder_image.
  EOT
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for image in values(var.images) : strcontains(image, "@sha256:")])
    error_message = "Pin every image by digest (…@sha256:…)."
  }
}

variable "placeholder_image" {
  description = "Image a new service starts with until its first `make deploy`."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "otlp_endpoint" {
  description = "OpenTelemetry collector (OTLP over HTTP) every function exports traces and metrics to; empty turns export off."
  type        = string
  default     = ""
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

variable "stripe_livemode" {
  description = "Stripe mode of the webhook signing secrets: live in production, test elsewhere. checkout-webhook refuses events of the other mode."
  type        = string

  validation {
    condition     = contains(["live", "test"], var.stripe_livemode)
    error_message = "stripe_livemode is live or test."
  }
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

variable "renewal_schedule" {
  description = "Cron schedule (UTC) of the renewal tick."
  type        = string
  default     = "0 * * * *"
}

variable "notices_sweep_schedule" {
  description = "Cron schedule (UTC) of notifications' sweep of e-mails parked during an SMTP outage."
  type        = string
  default     = "*/10 * * * *"
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (PagerDuty, Slack, e-mail) every alert goes to; created out of band."
  type        = list(string)
  default     = []
}

variable "runbook_url" {
  description = "Where docs/runbook.md is published; each alert links to its section."
  type        = string
  default     = "https://gitlab.com/fulfillment/fulfillment/-/blob/main/docs/runbook.md"
}

variable "webhook_slo_goal" {
  description = "Share of webhook requests answered without a server error over 28 days."
  type        = number
  default     = 0.9995
}

variable "knative_broker_url" {
  description = "Ingress URL of the fulfillment Broker of a Knative cluster running the functions (infra/knative), or empty."
  type        = string
  default     = ""
}

variable "seat_usage_invokers" {
  description = "IAM members allowed to call seat-usage (the seat-link gateway's service account); each report also carries its own bearer token."
  type        = list(string)
  default     = []
}

variable "smtp_host" {
  description = "SMTP server notifications sends customer e-mail through."
  type        = string
  default     = "smtp.example.com"
}

variable "smtp_port" {
  description = "Port of the SMTP server (STARTTLS is mandatory)."
  type        = number
  default     = 587
}

variable "smtp_username" {
  description = "SMTP user; its password is the smtp-password secret."
  type        = string
  default     = ""
}

variable "notify_from" {
  description = "Sender address of customer e-mail."
  type        = string
  default     = "billing@example.com"
}

variable "notify_portal_url" {
  description = "Customer portal the e-mails link to."
  type        = string
  default     = "https://customers.example.com"
}

variable "licensing_invokers" {
  description = "IAM members allowed to call licensing (the gateway GitLab instances reach for activation and seat links, and the Scheduler job of /tasks/sync-check)."
  type        = list(string)
  default     = []
}

variable "licensing_trusted_proxy_hops" {
  description = "Proxies between the front end that records a GitLab instance's address and licensing (the gateway: 1; 0 when instances call licensing's URL directly). Each appends its own address to X-Forwarded-For."
  type        = number
  default     = 1
}

variable "checkout_invokers" {
  description = "IAM members allowed to call checkout (GitLab.com's and the web store's service accounts)."
  type        = list(string)
  default     = []
}

variable "license_sync_check_schedule" {
  description = "When Cloud Scheduler runs licensing's strict-sync check (cron, UTC)."
  type        = string
  default     = "30 3 * * *"
}

variable "checkout_oidc_audience" {
  description = "Audience the callers' Google ID tokens must name: the checkout service's URL."
  type        = string
  default     = "https://checkout.invalid"
}

variable "checkout_callers" {
  description = "Identities (ID token e-mail) the checkout function accepts, checked after Cloud Run's IAM."
  type        = list(string)
  default     = []
}

variable "checkout_stripe_tax" {
  description = "Ask Stripe Tax for automatic tax on checkout sessions (tax added on top of the quote)."
  type        = bool
  default     = false
}

variable "trial_tick_schedule" {
  description = "When Cloud Scheduler runs checkout's trial tick (cron, UTC): trials end, convert and are announced from it."
  type        = string
  default     = "15 4 * * *"
}
