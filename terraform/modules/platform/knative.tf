# Optional: carry every topic into a Knative cluster's Broker, for functions
# running there (infra/knative). Each topic gets a push subscription that
# unwraps the message and writes its attributes as HTTP headers, so the ce-*
# attributes arrive as a binary-mode CloudEvent; the Broker's Triggers then
# pick each function's types. The push carries an OIDC token (audience: the
# Broker URL) for the cluster's ingress to check.

locals {
  # Not the Scheduler ticks: those are plain messages, and PingSources tick
  # on the cluster (infra/knative/shared.yaml).
  knative_topics = var.knative_broker_url == "" ? toset([]) : setsubtract(var.topics, [for s in values(var.schedules) : s.topic])
}

resource "google_service_account" "knative_bridge" {
  count = var.knative_broker_url == "" ? 0 : 1

  project      = var.project
  account_id   = "knative-bridge"
  display_name = "Pub/Sub push to the Knative Broker"
}

resource "google_service_account_iam_member" "knative_bridge_tokens" {
  count = var.knative_broker_url == "" ? 0 : 1

  service_account_id = google_service_account.knative_bridge[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.pubsub_service_agent}"
}

resource "google_pubsub_topic" "knative_dead_letter" {
  count = var.knative_broker_url == "" ? 0 : 1

  project = var.project
  name    = "knative-bridge-dead-letter"
}

resource "google_pubsub_topic_iam_member" "knative_dead_letter" {
  count = var.knative_broker_url == "" ? 0 : 1

  project = var.project
  topic   = google_pubsub_topic.knative_dead_letter[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${local.pubsub_service_agent}"
}

resource "google_pubsub_subscription" "knative_bridge" {
  for_each = local.knative_topics

  project              = var.project
  name                 = "${each.value}-to-knative"
  topic                = google_pubsub_topic.this[each.value].id
  ack_deadline_seconds = var.delivery.ack_deadline_seconds

  push_config {
    push_endpoint = var.knative_broker_url
    no_wrapper {
      write_metadata = true
    }
    oidc_token {
      service_account_email = google_service_account.knative_bridge[0].email
      audience              = var.knative_broker_url
    }
  }

  retry_policy {
    minimum_backoff = var.delivery.minimum_backoff
    maximum_backoff = var.delivery.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.knative_dead_letter[0].id
    max_delivery_attempts = var.delivery.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires
  }

  depends_on = [google_pubsub_topic_iam_member.knative_dead_letter]
}

resource "google_pubsub_subscription_iam_member" "knative_bridge_acks" {
  for_each = local.knative_topics

  project      = var.project
  subscription = google_pubsub_subscription.knative_bridge[each.value].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${local.pubsub_service_agent}"
}

# Its dead letters can be listed and replayed like a function's.
resource "google_pubsub_subscription" "knative_dead_letter" {
  count = var.knative_broker_url == "" ? 0 : 1

  project                    = var.project
  name                       = "knative-bridge-dead-letter"
  topic                      = google_pubsub_topic.knative_dead_letter[0].id
  message_retention_duration = "604800s" # 7 days, the most Pub/Sub keeps

  expiration_policy {
    ttl = "" # never expires
  }
}
