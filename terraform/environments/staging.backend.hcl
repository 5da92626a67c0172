bucket = "fulfillment-staging-tfstate"
prefix = "fulfillment"
