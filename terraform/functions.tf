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

locals {
  functions = {
    checkout-webhook = {
      public    = true
      invokers  = []
      env       = {}
      secrets   = { STRIPE_WEBHOOK_SECRETS = "stripe-webhook-secrets" }
      publishes = ["provider-events"]
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
        GITLAB_JWT_KEY      = "gitlab-jwt-key"
        LICENSE_SIGNING_KEY = "license-signing-key"
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
      publishes = ["subscription-events"]
    }
  }

  # Cloud Scheduler jobs: each publishes an empty tick to its topic, which
  # the subscribed function turns into work.
  schedules = {
    renewal-tick = {
      description = "Asks the renewal function to look for subscriptions due for renewal."
      schedule    = var.renewal_schedule
      topic       = "renewal-ticks"
    }
    quarterly-reconciliation = {
      description = "Starts the quarterly seat reconciliation (notices, then prorated invoices for seats owed)."
      schedule    = var.reconciliation_schedule
      topic       = "reconciliation-ticks"
    }
  }
}
