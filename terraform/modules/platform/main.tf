# What every function shares: APIs, topics, the Firestore database, the
# renewal tick and the secrets' containers.

locals {
  apis = [
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
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

resource "google_firestore_database" "this" {
  project                 = var.project
  name                    = "(default)"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  depends_on              = [google_project_service.this]
}

# Consumer dedupe records expire: Firestore deletes a document in
# "processed" once its expire_at timestamp has passed.
resource "google_firestore_field" "processed_expire_at" {
  project    = var.project
  database   = google_firestore_database.this.name
  collection = "processed"
  field      = "expire_at"

  ttl_config {}
}

resource "google_cloud_scheduler_job" "renewal_tick" {
  project     = var.project
  region      = var.region
  name        = "renewal-tick"
  description = "Asks the renewal function to look for subscriptions due for renewal."
  schedule    = var.renewal_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.this["renewal-ticks"].id
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
