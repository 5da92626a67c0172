# The Firestore database, its TTL policies and the composite indexes the
# functions' queries need (single-field indexes are automatic).

resource "google_firestore_database" "this" {
  project                 = var.project
  name                    = "(default)"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  depends_on              = [google_project_service.this]
}

# Documents Firestore deletes once their timestamp has passed: consumer dedupe
# records (processed/*, kept 7 days, as long as Pub/Sub may redeliver).
locals {
  ttl_fields = {
    processed = "expire_at"
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

# renewal: subscriptions whose status is one of several and whose term ends
# within a window (status IN [...] AND term_end BETWEEN ...).
resource "google_firestore_index" "subscriptions_status_term_end" {
  project    = var.project
  database   = google_firestore_database.this.name
  collection = "subscriptions"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "term_end"
    order      = "ASCENDING"
  }
}
