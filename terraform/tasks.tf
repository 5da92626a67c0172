# Scheduled HTTP tasks: Cloud Scheduler POSTs to a function's task endpoint
# daily with a Google ID token of a service account of the task's own, which
# may invoke that function and nothing else.
#   license-sync-check: licensing's strict-sync check (docs/licensing.md);
#   checkout-trial-tick: checkout's trial tick (docs/checkout.md), whose
#   service account checkout accepts for the tick alone (CHECKOUT_TICK_CALLERS).
locals {
  http_tasks = {
    license-sync-check = {
      function    = "licensing"
      path        = "/tasks/sync-check"
      schedule    = var.license_sync_check_schedule
      audience    = "" # the service's URL
      description = "Asks licensing to record self-managed instances that stopped syncing (strict cloud licensing)."
    }
    checkout-trial-tick = {
      function    = "checkout"
      path        = "/trials/tick"
      schedule    = var.trial_tick_schedule
      audience    = var.checkout_oidc_audience # what checkout verifies
      description = "Ends, converts, extends and announces free trials (checkout's POST /trials/tick)."
    }
  }
}

resource "google_service_account" "task" {
  for_each     = local.http_tasks
  project      = var.project
  account_id   = each.key
  display_name = "Cloud Scheduler: ${each.key}"
}

resource "google_cloud_run_v2_service_iam_member" "task" {
  for_each = local.http_tasks
  project  = var.project
  location = var.region
  name     = each.value.function
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.task[each.key].email}"

  depends_on = [module.function]
}

resource "google_cloud_scheduler_job" "task" {
  for_each    = local.http_tasks
  project     = var.project
  region      = var.region
  name        = each.key
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 3
  }

  http_target {
    http_method = "POST"
    uri         = "${module.function[each.value.function].url}${each.value.path}"

    oidc_token {
      service_account_email = google_service_account.task[each.key].email
      audience              = each.value.audience != "" ? each.value.audience : module.function[each.value.function].url
    }
  }
}
