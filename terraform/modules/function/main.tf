# One function: its identity, its Cloud Run service, how events reach it
# (a Pub/Sub push subscription authenticated with OIDC, as a separate invoker
# identity) or who may call it (HTTP), and where events go when they cannot be
# processed (its dead-letter topic, listed and replayed through a pull
# subscription of the same name).

locals {
  subscribes  = var.topic != null
  dead_letter = "${var.name}-dead-letter"
  env = merge(var.env, {
    GOOGLE_CLOUD_PROJECT = var.project
    FIRESTORE_DATABASE   = var.database # the one database its identity may use (below)
    DEAD_LETTER_TOPIC    = local.dead_letter
    LOG_LEVEL            = var.log_level
    FUNCTION_TARGET      = var.name
    # Traces and metrics go to an OpenTelemetry collector when one is set;
    # without it they stay off (logs still carry the trace id).
    OTEL_SERVICE_NAME           = var.name
    OTEL_TRACES_EXPORTER        = var.otlp_endpoint == "" ? "none" : "otlp"
    OTEL_METRICS_EXPORTER       = var.otlp_endpoint == "" ? "none" : "otlp"
    OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
  })
}

# --- Identity: what the function itself may do ---------------------------

resource "google_service_account" "function" {
  project      = var.project
  account_id   = var.name
  display_name = "Function ${var.name}"
}

# Exporting its traces and metrics.
resource "google_project_iam_member" "function" {
  for_each = toset(["roles/cloudtrace.agent", "roles/monitoring.metricWriter"])

  project = var.project
  role    = each.value
  member  = google_service_account.function.member
}

# Firestore reads and writes, in its own database only. Firestore IAM cannot
# tell collections apart, but a condition on the database's resource name
# limits a project-level grant to one database, as Firestore documents for
# per-database access ("Configure per-database access permissions",
# https://firebase.google.com/docs/firestore/manage-databases, also
# https://cloud.google.com/firestore/native/docs/manage-databases):
#   resource.name=="projects/PROJECT_ID/databases/DATABASE_ID"
# So the public webhook reaches only the webhooks database and its raw events,
# never the subscriptions, and no other function reaches those raw events.
# The role's few project-level permissions (listing databases, reading the
# project) fail the condition and are not granted: the functions use none.
resource "google_project_iam_member" "firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.function.member

  condition {
    title       = "Firestore database ${var.database} only"
    description = "Function ${var.name} reads and writes Firestore database ${var.database} and no other."
    expression  = "resource.name == \"projects/${var.project}/databases/${var.database}\""
  }
}

resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = toset(concat(var.publishes, [google_pubsub_topic.dead_letter.name]))

  project = var.project
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "reads" {
  for_each = var.secrets

  project   = var.project
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

# --- The service ------------------------------------------------------------

resource "google_cloud_run_v2_service" "this" {
  project  = var.project
  name     = var.name
  location = var.region
  # Pub/Sub push counts as internal traffic: a pushed function is reachable
  # only from inside the project. An HTTP function faces the internet, and
  # IAM still refuses callers without the invoker role unless it is public.
  ingress = local.subscribes ? "INGRESS_TRAFFIC_INTERNAL_ONLY" : "INGRESS_TRAFFIC_ALL"

  template {
    service_account = google_service_account.function.email

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      # Cloud Run's defaults, written out because the entry point tunes the
      # Go runtime to them: GOMAXPROCS follows the CPU quota (1) and the
      # heap's soft limit is 80% of the memory (shared/runtime/entrypoint).
      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secrets
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }
    }
  }

  # make deploy owns the image and the traffic split after creation (a new
  # revision, a canary share, promotion or rollback): terraform leaves them be.
  lifecycle {
    ignore_changes = [template[0].containers[0].image, template[0].revision, traffic, client, client_version]
  }

  # The service account must be able to read its secrets before a revision starts.
  depends_on = [google_secret_manager_secret_iam_member.reads]
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.public ? 1 : 0

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Callers of an HTTP function that is not public (e.g. seat reports).
resource "google_cloud_run_v2_service_iam_member" "callers" {
  for_each = toset(var.invokers)

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

# --- Delivery: Pub/Sub pushes to the service as the invoker ----------------

resource "google_service_account" "invoker" {
  count = local.subscribes ? 1 : 0

  project      = var.project
  account_id   = "${var.name}-inv"
  display_name = "Pub/Sub push to ${var.name}"
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  count = local.subscribes ? 1 : 0

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker[0].member
}

# Pub/Sub mints the push OIDC tokens as the invoker.
resource "google_service_account_iam_member" "pubsub_mints_tokens" {
  count = local.subscribes ? 1 : 0

  service_account_id = google_service_account.invoker[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_subscription" "push" {
  count = local.subscribes ? 1 : 0

  project              = var.project
  name                 = var.name
  topic                = var.topic
  ack_deadline_seconds = var.delivery.ack_deadline_seconds

  push_config {
    push_endpoint = google_cloud_run_v2_service.this.uri
    oidc_token {
      service_account_email = google_service_account.invoker[0].email
      audience              = google_cloud_run_v2_service.this.uri
    }
  }

  retry_policy {
    minimum_backoff = var.delivery.minimum_backoff
    maximum_backoff = var.delivery.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.delivery.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires
  }

  depends_on = [google_pubsub_topic_iam_member.pubsub_dead_letters]
}

# Pub/Sub moves a message to the dead-letter topic itself after the last
# attempt: it must be allowed to publish there and to ack on the source.
resource "google_pubsub_subscription_iam_member" "pubsub_acks" {
  count = local.subscribes ? 1 : 0

  project      = var.project
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}

# --- Dead letters -------------------------------------------------------------

resource "google_pubsub_topic" "dead_letter" {
  project = var.project
  name    = local.dead_letter
}

resource "google_pubsub_topic_iam_member" "pubsub_dead_letters" {
  count = local.subscribes ? 1 : 0

  project = var.project
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project
  name                       = local.dead_letter
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = var.delivery.ack_deadline_seconds
  message_retention_duration = "604800s" # 7 days, the most Pub/Sub keeps

  expiration_policy {
    ttl = "" # never expires
  }
}
