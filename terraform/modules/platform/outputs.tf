output "pubsub_service_agent" {
  description = "Pub/Sub's service agent, which pushes, dead-letters and mints push OIDC tokens."
  value       = local.pubsub_service_agent
}
