# Alerts, the webhook's availability SLO and the dashboard. Every alert's
# documentation says what it means and links to its section of
# docs/runbook.md (terraform/invariants_test.go checks the sections exist).

locals {
  run_requests = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\""
  webhook      = "resource.labels.service_name=\"${var.webhook_service}\""

  # Multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5): page
  # when 2% of the 28-day budget burns in an hour, or 5% in six hours; the
  # short window makes the alert stop soon after the burning stops.
  burn_rate_alerts = {
    fast = { long = "3600s", short = "300s", rate = 14.4 }
    slow = { long = "21600s", short = "1800s", rate = 6 }
  }

  # Log-based counters, from the functions' Cloud Logging JSON (severity,
  # message, function, stripe_type) and Cloud Scheduler's own logs.
  log_metrics = {
    payment_failures = {
      # Each failure once: its redeliveries (Stripe's retries, or a delivery
      # whose answer was lost) are answered "duplicate" and not counted.
      description = "Payment failures reported by the provider, each event once."
      filter      = "resource.type=\"cloud_run_revision\" AND ${local.webhook} AND jsonPayload.message=\"webhook accepted\" AND jsonPayload.result=\"published\" AND jsonPayload.stripe_type=(\"invoice.payment_failed\" OR \"checkout.session.async_payment_failed\")"
    }
    renewal_failures = {
      description = "Renewal ticks or renewals that failed: the renewal function's warnings and errors, and failed renewal-tick jobs."
      filter      = "(resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"renewal\" AND severity>=WARNING) OR (resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=\"renewal-tick\" AND severity>=ERROR)"
    }
    # Per revision (a log metric keeps the resource's labels): make deploy
    # counts a canary's dead letters as errors.
    dead_lettered = {
      description = "Events a function could not process and dead-lettered."
      filter      = "resource.type=\"cloud_run_revision\" AND jsonPayload.message=\"permanent failure; dead-lettering\""
    }
    provisioning_failures = {
      description = "Provisioning calls that failed (transient, retried) or were dead-lettered (permanent)."
      filter      = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"provisioning\" AND severity>=WARNING"
    }
  }

  # Alerts on the counters above (any occurrence, except payment failures,
  # which page over a threshold) and on the dead-letter backlog.
  count_alerts = {
    failed-renewals = {
      name      = "Failed renewals"
      metric    = "renewal_failures"
      window    = "300s"
      threshold = 0
      summary   = "The renewal function or its Scheduler tick failed: subscriptions may not be charged before their term ends."
    }
    payment-failures-over-threshold = {
      name      = "Payment failures over threshold"
      metric    = "payment_failures"
      window    = var.payment_failures_window
      threshold = var.payment_failures_threshold - 1
      summary   = "At least ${var.payment_failures_threshold} payment failures within ${var.payment_failures_window}: the payment provider, a card network or our checkout may be failing."
    }
    provisioning-failures = {
      name      = "Provisioning failures"
      metric    = "provisioning_failures"
      window    = "300s"
      threshold = 0
      summary   = "Paid subscriptions are not being provisioned in GitLab (or licensed): customers paid and cannot use what they bought."
    }
  }
}

# --- The webhook's availability SLO ------------------------------------------

resource "google_monitoring_custom_service" "webhook" {
  project      = var.project
  service_id   = var.webhook_service
  display_name = "Payment provider webhook (${var.webhook_service})"
  depends_on   = [google_project_service.this]
}

resource "google_monitoring_slo" "webhook_availability" {
  project             = var.project
  service             = google_monitoring_custom_service.webhook.service_id
  slo_id              = "availability"
  display_name        = "${var.webhook_slo_goal * 100}% of webhook requests answered without a server error, 28 days"
  goal                = var.webhook_slo_goal
  rolling_period_days = 28

  # 4xx answers (bad signature, malformed body) are the caller's fault; a 5xx
  # means Stripe must retry: that is unavailability.
  request_based_sli {
    good_total_ratio {
      total_service_filter = "${local.run_requests} AND ${local.webhook}"
      bad_service_filter   = "${local.run_requests} AND ${local.webhook} AND metric.labels.response_code_class=\"5xx\""
    }
  }
}

resource "google_monitoring_alert_policy" "webhook_burn_rate" {
  for_each = local.burn_rate_alerts

  project               = var.project
  display_name          = "Webhook error budget burning (${each.key})"
  combiner              = "AND"
  notification_channels = var.notification_channels

  dynamic "conditions" {
    for_each = [each.value.long, each.value.short]
    content {
      display_name = "Burn rate over ${conditions.value} above ${each.value.rate}"
      condition_threshold {
        filter          = "select_slo_burn_rate(\"${google_monitoring_slo.webhook_availability.name}\", \"${conditions.value}\")"
        comparison      = "COMPARISON_GT"
        threshold_value = each.value.rate
        duration        = "0s"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The webhook is failing (5xx) fast enough to spend its ${var.webhook_slo_goal * 100}% availability budget early (burn rate above ${each.value.rate} over ${each.value.long} and ${each.value.short}). Stripe retries, but checkouts are delayed. Runbook: ${var.runbook_url}#webhook-error-budget-burn"
  }
}

# --- Dead letters ----------------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  project               = var.project
  display_name          = "Dead-letter backlog"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Messages waiting in a dead-letter subscription"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=monitoring.regex.full_match(\".*-dead-letter\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function could not process an event and dead-lettered it: nothing was lost, but a customer's purchase, renewal or provisioning is stuck until someone looks. Runbook: ${var.runbook_url}#dead-letter-backlog"
  }
}

# --- Failures counted from the logs ---------------------------------------------

resource "google_logging_metric" "this" {
  for_each = local.log_metrics

  project     = var.project
  name        = each.key
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_monitoring_alert_policy" "count" {
  for_each = local.count_alerts

  project               = var.project
  display_name          = each.value.name
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.value.metric} above ${each.value.threshold} within ${each.value.window}"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.this[each.value.metric].name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = "0s"
      aggregations {
        alignment_period     = each.value.window
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "${each.value.summary} Runbook: ${var.runbook_url}#${each.key}"
  }
}

# --- Dashboard ---------------------------------------------------------------------

resource "google_monitoring_dashboard" "fulfillment" {
  project = var.project
  dashboard_json = jsonencode({
    displayName = "Fulfillment"
    mosaicLayout = {
      columns = 12
      tiles = [for i, w in [
        { title = "Requests by function", filter = local.run_requests, reducer = "REDUCE_SUM", group = ["resource.labels.service_name"], aligner = "ALIGN_RATE" },
        { title = "Server errors (5xx) by function", filter = "${local.run_requests} AND metric.labels.response_code_class=\"5xx\"", reducer = "REDUCE_SUM", group = ["resource.labels.service_name"], aligner = "ALIGN_RATE" },
        { title = "p95 latency by function (ms)", filter = "metric.type=\"run.googleapis.com/request_latencies\" AND resource.type=\"cloud_run_revision\"", reducer = "REDUCE_PERCENTILE_95", group = ["resource.labels.service_name"], aligner = "ALIGN_DELTA" },
        { title = "Dead-letter backlog", filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=monitoring.regex.full_match(\".*-dead-letter\")", reducer = "REDUCE_SUM", group = ["resource.labels.subscription_id"], aligner = "ALIGN_MAX" },
        { title = "Payment failures", filter = "metric.type=\"logging.googleapis.com/user/payment_failures\"", reducer = "REDUCE_SUM", group = [], aligner = "ALIGN_SUM" },
        { title = "Renewal failures", filter = "metric.type=\"logging.googleapis.com/user/renewal_failures\"", reducer = "REDUCE_SUM", group = [], aligner = "ALIGN_SUM" },
        { title = "Provisioning failures", filter = "metric.type=\"logging.googleapis.com/user/provisioning_failures\"", reducer = "REDUCE_SUM", group = [], aligner = "ALIGN_SUM" },
        ] : {
        xPos   = (i % 2) * 6
        yPos   = floor(i / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = w.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = w.filter
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = w.aligner
                    crossSeriesReducer = w.reducer
                    groupByFields      = w.group
                  }
                }
              }
            }]
          }
        }
      }]
    }
  })
  depends_on = [google_logging_metric.this]
}
