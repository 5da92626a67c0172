project = "fulfillment-production"
region  = "us-central1"

# The webhook stays warm: Stripe waits on it and CustomersDot targets 99.95%.
min_instances = { checkout-webhook = 1 }

log_level               = "info"
stripe_livemode         = "live"
gitlab_url              = "https://gitlab.com"
salesforce_instance_url = "https://fulfillment.my.salesforce.com"
alert_threshold         = 10
alert_window            = "15m"
renewal_lead_time       = "72h"

# Where alerts go: the ids of the PagerDuty notification channel(s), created out of
# band in Cloud Monitoring (projects/<project>/notificationChannels/<number>).
notification_channels = []
