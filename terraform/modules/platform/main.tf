# What every function shares: APIs, topics, the image registry, the
# Scheduler ticks and the secrets' containers. The Firestore database is in
# firestore.tf; alerts, SLOs and the dashboard in monitoring.tf.

locals {
  # Pub/Sub's service agent: it pushes, dead-letters and mints push OIDC tokens.
  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  apis = [
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ]
}

data "google_project" "this" {
  project_id = var.project
}

resource "google_project_service" "this" {
  for_each = toset(local.apis)

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}

resource "google_pubsub_topic" "this" {
  for_each = toset(var.topics)

  project    = var.project
  name       = each.value
  depends_on = [google_project_service.this]
}

resource "google_pubsub_subscription" "pull" {
  for_each = var.pull_subscriptions

  project                    = var.project
  name                       = each.key
  topic                      = google_pubsub_topic.this[each.value].id
  message_retention_duration = "604800s" # 7 days

  expiration_policy {
    ttl = "" # never expires
  }
}

# Where make deploy pushes the functions' images (<region>-docker.pkg.dev/<project>/functions/<name>).
resource "google_artifact_registry_repository" "functions" {
  project       = var.project
  location      = var.region
  repository_id = "functions"
  format        = "DOCKER"
  description   = "Function images built by ko (make deploy)."
  depends_on    = [google_project_service.this]
}

resource "google_cloud_scheduler_job" "tick" {
  for_each = var.schedules

  project     = var.project
  region      = var.region
  name        = each.key
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 3
  }

  pubsub_target {
    topic_name = google_pubsub_topic.this[each.value.topic].id
    data       = base64encode("{}")
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret" "this" {
  for_each = toset(var.secrets)

  project   = var.project
  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}
