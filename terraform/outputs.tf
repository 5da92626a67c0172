output "webhook_url" {
  description = "Give this URL to the payment provider (Stripe) as the webhook endpoint."
  value       = module.function["checkout-webhook"].url
}

output "service_urls" {
  description = "Cloud Run URL of every function."
  value       = { for name, f in module.function : name => f.url }
}
