# The checkout function's daily trial tick (functions/checkout,
# docs/checkout.md): Cloud Scheduler calls POST /trials/tick with a Google ID
# token of a service account of its own, which may invoke checkout and
# nothing else, and which checkout accepts as a caller (CHECKOUT_CALLERS).
resource "google_service_account" "trial_tick" {
  project      = var.project
  account_id   = "checkout-trial-tick"
  display_name = "Cloud Scheduler: checkout's daily trial tick"
}

resource "google_cloud_run_v2_service_iam_member" "trial_tick" {
  project  = var.project
  location = var.region
  name     = "checkout"
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trial_tick.email}"

  depends_on = [module.function]
}

resource "google_cloud_scheduler_job" "trial_tick" {
  project     = var.project
  region      = var.region
  name        = "checkout-trial-tick"
  description = "Ends, converts, extends and announces free trials (checkout's POST /trials/tick)."
  schedule    = var.trial_tick_schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 3
  }

  http_target {
    http_method = "POST"
    uri         = "${module.function["checkout"].url}/trials/tick"

    oidc_token {
      service_account_email = google_service_account.trial_tick.email
      audience              = var.checkout_oidc_audience
    }
  }
}
