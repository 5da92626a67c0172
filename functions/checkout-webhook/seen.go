package checkoutwebhook

import "sync"

// seenSize bounds the ids the webhook remembers: two generations of this
// many (about 1 MiB each at most), the older dropped when the newer fills.
const seenSize = 10_000

// seen remembers the events this process found recorded in a final status
// (published or ignored), a hint only: a repeat of one counts its delivery
// without reading the record first. It never stands in for the record's
// dedupe: an id it does not know takes the whole path (read, publish,
// create with its not-exists precondition), and a hint whose record is gone
// is dropped and the delivery takes the whole path too.
type seen struct {
	mu       sync.Mutex
	cur, old map[string]string // event id -> final status
}

func newSeen() *seen { return &seen{cur: map[string]string{}} }

// status is the final status recorded for id, if this process saw it.
func (s *seen) status(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.cur[id]; ok {
		return st, true
	}
	st, ok := s.old[id]
	return st, ok
}

// add remembers that id is recorded with the final status st.
func (s *seen) add(id, st string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cur) >= seenSize {
		s.old, s.cur = s.cur, make(map[string]string, seenSize)
	}
	s.cur[id] = st
}

// forget drops a hint that proved wrong.
func (s *seen) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cur, id)
	delete(s.old, id)
}
