project = "fulfillment-staging"
region  = "us-central1"

log_level               = "debug"
stripe_livemode         = "test"
gitlab_url              = "https://staging.gitlab.com"
salesforce_instance_url = "https://fulfillment--staging.sandbox.my.salesforce.com"
alert_threshold         = 3
alert_window            = "15m"
renewal_lead_time       = "72h"

# Where alerts go: the ids of the Slack notification channel(s), created out of
# band in Cloud Monitoring (projects/<project>/notificationChannels/<number>).
notification_channels = []
