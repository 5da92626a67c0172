bucket = "fulfillment-production-tfstate"
prefix = "fulfillment"
