# The fulfillment system on GCP: the shared platform plus one instance of
# modules/function per entry of local.functions (functions.tf). Topics and the
# delivery policy come from infra/topology/topology.yaml, the definition the
# local stack uses too. Environments only set variables:
#
#   tofu init -backend-config=environments/staging.backend.hcl
#   tofu apply -var-file=environments/staging.tfvars -var-file=images.tfvars

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
  # State per environment: bucket and prefix in environments/<env>.backend.hcl.
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region
}

locals {
  topology = yamldecode(file("${path.module}/../infra/topology/topology.yaml"))
}

module "platform" {
  source = "./modules/platform"

  project            = var.project
  region             = var.region
  topics             = distinct(concat(local.topology.topics, [for s in values(local.schedules) : s.topic]))
  pull_subscriptions = local.topology.pull_subscriptions
  schedules          = local.schedules
  delivery           = local.topology.delivery
  knative_broker_url = var.knative_broker_url
  secrets            = distinct(flatten([for f in values(local.functions) : values(f.secrets)]))

  notification_channels      = var.notification_channels
  runbook_url                = var.runbook_url
  webhook_service            = "checkout-webhook"
  webhook_slo_goal           = var.webhook_slo_goal
  payment_failures_threshold = var.alert_threshold
}

module "function" {
  source   = "./modules/function"
  for_each = local.functions

  name      = each.key
  project   = var.project
  region    = var.region
  image     = lookup(var.images, each.key, var.placeholder_image)
  public    = each.value.public
  invokers  = each.value.invokers
  topic     = try(local.topology.functions[each.key].topic, null)
  publishes = each.value.publishes
  delivery  = local.topology.delivery
  log_level = var.log_level
  env       = each.value.env
  database  = try(each.value.database, "(default)")

  otlp_endpoint = var.otlp_endpoint
  secrets       = each.value.secrets

  pubsub_service_agent = module.platform.pubsub_service_agent
  min_instances        = lookup(var.min_instances, each.key, 0)

  # Functions refer to topics and secrets by name: create those first.
  depends_on = [module.platform]
}
