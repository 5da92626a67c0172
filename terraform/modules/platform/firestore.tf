# The Firestore databases and their TTL policies (the functions' queries need
# only the automatic single-field indexes: see the end of this file).

resource "google_firestore_database" "this" {
  project                 = var.project
  name                    = "(default)"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  depends_on              = [google_project_service.this]
}

# The public webhook's own database: its raw events (webhook_events) and
# nothing else. Each function may use one database only (modules/function:
# the condition on its roles/datastore.user), so the one function the
# internet reaches cannot touch the subscriptions, and no other function
# the raw events. Its name is checkout-webhook's database in functions.tf.
resource "google_firestore_database" "webhooks" {
  project                 = var.project
  name                    = "webhooks"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  depends_on              = [google_project_service.this]
}

# Documents Firestore deletes once their timestamp has passed: consumer dedupe
# records (processed/*, kept 30 days: Pub/Sub redelivers for at most 7) and
# failed-delivery counts (delivery_attempts/*).
locals {
  ttl_fields = {
    processed           = "expire_at"
    delivery_attempts   = "expire_at" # failed-delivery counts, kept as long as Pub/Sub may redeliver
    activation_attempts = "expire_at" # licensing's per-code attempt and per-license seat link windows
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.ttl_fields

  project    = var.project
  database   = google_firestore_database.this.name
  collection = each.key
  field      = each.value

  ttl_config {}

  # A TTL field needs no single-field index: skip its write cost.
  index_config {}
}

# No composite index is needed. renewal's review query is a range and order
# on subscriptions.next_review_at (then the document id), and seat-usage looks
# subscriptions up by order.namespace_id or order.instance_id (equality), and
# payment-result looks parked events up by dead_letters.awaiting and consumer
# (two equalities): the automatic single-field indexes serve all three, so none
# of those fields may be exempted from indexing.
