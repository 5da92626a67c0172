# The fulfillment system on GCP: the shared platform plus one instance of
# modules/function per function in infra/topology/topology.yaml, which is the
# single definition of topics, subscriptions and delivery policy.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  topology = yamldecode(file("${path.module}/../infra/topology/topology.yaml"))

  # What the topology does not say about each function: its settings, its
  # secrets (environment variable => Secret Manager secret id) and the topics
  # it publishes to. Every function in the topology must have an entry.
  functions = {
    checkout-webhook = {
      env       = {}
      secrets   = { STRIPE_WEBHOOK_SECRETS = "stripe-webhook-secrets" }
      publishes = ["provider-events"]
    }
    payment-result = {
      env       = {}
      secrets   = {}
      publishes = ["subscription-events"]
    }
    provisioning = {
      env = { GITLAB_URL = var.gitlab_url }
      secrets = {
        GITLAB_JWT_KEY      = "gitlab-jwt-key"
        LICENSE_SIGNING_KEY = "license-signing-key"
      }
      publishes = ["provisioning-events"]
    }
    crm-push = {
      env       = { SALESFORCE_INSTANCE_URL = var.salesforce_instance_url }
      secrets   = { SALESFORCE_ACCESS_TOKEN = "salesforce-access-token" }
      publishes = []
    }
    failed-payment-alerting = {
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
      env       = { RENEWAL_LEAD_TIME = var.renewal_lead_time }
      secrets   = { STRIPE_API_KEY = "stripe-api-key" }
      publishes = []
    }
  }
}

module "platform" {
  source = "./modules/platform"

  project            = var.project
  region             = var.region
  topics             = local.topology.topics
  pull_subscriptions = local.topology.pull_subscriptions
  secrets            = distinct(flatten([for f in values(local.functions) : values(f.secrets)]))
}

module "function" {
  source   = "./modules/function"
  for_each = local.topology.functions

  name      = each.key
  project   = var.project
  region    = var.region
  image     = var.images[each.key]
  public    = try(each.value.trigger, null) == "http"
  topic     = try(each.value.topic, null)
  publishes = local.functions[each.key].publishes
  delivery  = local.topology.delivery
  log_level = var.log_level
  env       = local.functions[each.key].env
  secrets   = local.functions[each.key].secrets

  pubsub_service_agent = module.platform.pubsub_service_agent
  min_instances        = lookup(var.min_instances, each.key, 0)

  # Functions refer to topics and secrets by name: create those first.
  depends_on = [module.platform]
}
