output "pubsub_service_agent" {
  description = "Pub/Sub's service agent, which pushes, dead-letters and mints push OIDC tokens."
  value       = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
