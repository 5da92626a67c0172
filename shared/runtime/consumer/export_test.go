package consumer

import "time"

// SetClock gives p's leases the clock now.
func SetClock(p *Processor, now func() time.Time) { p.clock = now }

// LeaseHeldSurely is how long a holder deletes its lease unchecked.
const LeaseHeldSurely = leaseHeldSurely
