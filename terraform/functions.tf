# What terraform needs to know about each function beyond its event wiring
# (infra/topology/topology.yaml gives the topic it is pushed from). Adding a
# function is one entry here; terraform/invariants_test.go checks that every
# directory under functions/ has one.
#
#   public    anyone on the internet may call it, unauthenticated (only the
#             payment provider's webhook)
#   invokers  who may call an HTTP function that is not public (IAM members)
#   env       settings; secrets: environment variable => Secret Manager secret
#   publishes topics it publishes to
#   database  the Firestore database it uses, the only one it may read or
#             write; "(default)" when not set. Only the public webhook has
#             one of its own (webhooks, modules/platform/firestore.tf).

locals {
  functions = {
    checkout-webhook = {
      public    = true
      invokers  = []
      env       = { STRIPE_LIVEMODE = var.stripe_livemode }
      secrets   = { STRIPE_WEBHOOK_SECRETS = "stripe-webhook-secrets" }
      publishes = ["provider-events"]
      # Its raw events (webhook_events) live apart from everyone's state: an
      # exploited webhook reaches nothing else, and no other function them.
      database = "webhooks"
    }
    payment-result = {
      public    = false
      invokers  = []
      env       = {}
      secrets   = {}
      publishes = ["subscription-events"]
    }
    provisioning = {
      public   = false
      invokers = []
      env      = { GITLAB_URL = var.gitlab_url }
      secrets = {
        GITLAB_JWT_KEY         = "gitlab-jwt-key"
        LICENSE_SIGNING_KEY    = "license-signing-key"
        ACTIVATION_CODE_PEPPER = "activation-code-pepper" # licensing's too
      }
      publishes = ["provisioning-events"]
    }
    crm-push = {
      public    = false
      invokers  = []
      env       = { SALESFORCE_INSTANCE_URL = var.salesforce_instance_url }
      secrets   = { SALESFORCE_ACCESS_TOKEN = "salesforce-access-token" }
      publishes = []
    }
    failed-payment-alerting = {
      public   = false
      invokers = []
      env = {
        PAGERDUTY_EVENTS_URL = var.pagerduty_events_url
        ALERT_THRESHOLD      = tostring(var.alert_threshold)
        ALERT_WINDOW         = var.alert_window
      }
      secrets = {
        SLACK_WEBHOOK_URL     = "slack-webhook-url"
        PAGERDUTY_ROUTING_KEY = "pagerduty-routing-key"
      }
      publishes = []
    }
    renewal = {
      public    = false
      invokers  = []
      env       = { RENEWAL_LEAD_TIME = var.renewal_lead_time }
      secrets   = { STRIPE_API_KEY = "stripe-api-key" }
      publishes = ["subscription-events", "renewal-ticks"] # renewal-ticks: its own fan-out pages and renewal-due events
    }
    # Daily seat reports. Not public: Cloud Run lets only the listed
    # identities in (the seat-link gateway), and the function checks each
    # report's bearer token on top.
    seat-usage = {
      public    = false
      invokers  = var.seat_usage_invokers
      env       = {}
      secrets   = { SEAT_USAGE_TOKEN_KEY = "seat-usage-token-key" }
      publishes = []
    }
    # Customer e-mail (SMTP) and GitLab in-app notices on subscription-events.
    notifications = {
      public   = false
      invokers = []
      env = {
        SMTP_HOST         = var.smtp_host
        SMTP_PORT         = tostring(var.smtp_port)
        SMTP_USERNAME     = var.smtp_username
        NOTIFY_FROM       = var.notify_from
        NOTIFY_PORTAL_URL = var.notify_portal_url
        GITLAB_URL        = var.gitlab_url
        RENEWAL_LEAD_TIME = var.renewal_lead_time
      }
      secrets = {
        SMTP_PASSWORD          = "smtp-password"
        GITLAB_ADMIN_TOKEN     = "gitlab-admin-token"
        NOTIFY_PREFERENCES_KEY = "notify-preferences-key" # signs customers' opt-out links
      }
      publishes = []
    }
    # Cloud licensing for self-managed instances (functions/licensing):
    # GitLab instances reach it through the same gateway as seat links; the
    # activation code or the signed license key is checked by the function.
    licensing = {
      public   = false
      invokers = var.licensing_invokers
      # The per-address activation and seat link limits key on the caller:
      # Cloud Run's front end appends it to X-Forwarded-For, and each proxy
      # after it (the gateway) appends its own address after it.
      env = {
        TRUST_FORWARDED_FOR = "true"
        TRUSTED_PROXY_HOPS  = tostring(var.licensing_trusted_proxy_hops)
      }
      secrets = {
        LICENSE_SIGNING_KEY    = "license-signing-key"
        ACTIVATION_CODE_PEPPER = "activation-code-pepper"
      }
      publishes = ["subscription-events", "renewal-ticks"] # renewal-ticks: auto-renew off after the strict-sync grace
    }
    # The purchase API and trials (issue 12). Not public: Cloud Run lets only
    # the listed identities in (GitLab.com's and the web store's service
    # accounts), and the function verifies their Google ID tokens again
    # (audience, allow-list) with go-oidc.
    checkout = {
      public   = false
      invokers = var.checkout_invokers
      env = {
        GITLAB_URL            = var.gitlab_url
        OIDC_AUDIENCE         = var.checkout_oidc_audience
        CHECKOUT_CALLERS      = join(",", var.checkout_callers)
        CHECKOUT_TICK_CALLERS = google_service_account.task["checkout-trial-tick"].email # may only tick
        CHECKOUT_STRIPE_TAX   = tostring(var.checkout_stripe_tax)
      }
      secrets = {
        STRIPE_API_KEY = "stripe-api-key"
        GITLAB_JWT_KEY = "gitlab-jwt-key"
      }
      publishes = ["subscription-events"] # trial events
    }
  }

  # Cloud Scheduler jobs: each publishes an empty tick to its topic, which
  # the subscribed function turns into work. One tick is enough: each
  # subscription keeps its own next_review_at, and renewal runs whatever is
  # due on it (renewal notice, charge, its own quarterly reconciliation
  # notice and true-up, dunning retries, suspension, expiry).
  schedules = {
    renewal-tick = {
      description = "Asks the renewal function to look for subscriptions due for renewal."
      schedule    = var.renewal_schedule
      topic       = "renewal-ticks"
    }
    # notifications sends the e-mails it parked while the SMTP server was
    # away; its tick is a bare message on subscription-events, which the
    # other subscribers acknowledge as a type they do not handle.
    notices-sweep = {
      description = "Asks notifications to send the e-mails parked during an SMTP outage."
      schedule    = var.notices_sweep_schedule
      topic       = "subscription-events"
    }
  }
}
