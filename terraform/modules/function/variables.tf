variable "name" {
  description = "Function name: the Cloud Run service, FUNCTION_TARGET, service account and subscription names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{5,25}$", var.name))
    error_message = "6 to 26 lowercase letters, digits and dashes (service account ids are at most 30 characters)."
  }
}

variable "project" {
  type = string
}

variable "region" {
  type = string
}

variable "database" {
  description = "The Firestore database the function uses (FIRESTORE_DATABASE), the only one its identity may read or write."
  type        = string
  default     = "(default)"

  validation {
    # One database id (Firestore's rules for an id), never a pattern.
    condition     = var.database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.database))
    error_message = "A Firestore database id: (default), or 4 to 63 lowercase letters, digits and dashes starting with a letter."
  }
}

variable "image" {
  description = "Container image pinned by digest."
  type        = string
}

variable "public" {
  description = "Anyone on the internet may invoke the service (the provider's webhook). Otherwise only Pub/Sub may."
  type        = bool
  default     = false
}

variable "invokers" {
  description = "IAM members who may call an HTTP function that is not public."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.invokers, "allUsers") && !contains(var.invokers, "allAuthenticatedUsers")
    error_message = "Make a function public with public = true, not through invokers."
  }
}

variable "topic" {
  description = "Topic pushed to the function; null for an HTTP-only function."
  type        = string
  default     = null
}

variable "publishes" {
  description = "Topics the function publishes to."
  type        = list(string)
  default     = []
}

variable "delivery" {
  description = "Push delivery policy (topology.yaml: delivery)."
  type = object({
    ack_deadline_seconds  = number
    max_delivery_attempts = number
    minimum_backoff       = string
    maximum_backoff       = string
  })
}

variable "otlp_endpoint" {
  description = "OpenTelemetry collector (OTLP over HTTP) for traces and metrics; empty turns export off."
  type        = string
  default     = ""
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "env" {
  description = "Function-specific environment variables."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Environment variable => Secret Manager secret; the latest version is read at start."
  type        = map(string)
  default     = {}
}

variable "pubsub_service_agent" {
  description = "Email of the project's Pub/Sub service agent."
  type        = string
}

variable "min_instances" {
  type    = number
  default = 0
}

variable "max_instances" {
  type    = number
  default = 20
}
