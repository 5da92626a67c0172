# The strict-sync check of cloud licensing (functions/licensing,
# docs/licensing.md): Cloud Scheduler calls POST /tasks/sync-check daily with
# an OIDC token of a service account of its own, which may invoke licensing
# and nothing else.
resource "google_service_account" "license_sync_check" {
  project      = var.project
  account_id   = "license-sync-check"
  display_name = "Cloud Scheduler: licensing's strict-sync check"
}

resource "google_cloud_run_v2_service_iam_member" "license_sync_check" {
  project  = var.project
  location = var.region
  name     = "licensing"
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.license_sync_check.email}"

  depends_on = [module.function]
}

resource "google_cloud_scheduler_job" "license_sync_check" {
  project     = var.project
  region      = var.region
  name        = "license-sync-check"
  description = "Asks licensing to record self-managed instances that stopped syncing (strict cloud licensing)."
  schedule    = var.license_sync_check_schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 3
  }

  http_target {
    http_method = "POST"
    uri         = "${module.function["licensing"].url}/tasks/sync-check"

    oidc_token {
      service_account_email = google_service_account.license_sync_check.email
      audience              = module.function["licensing"].url
    }
  }
}
