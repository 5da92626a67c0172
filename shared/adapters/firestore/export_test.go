package firestore

// OpenWith is openWith, for the tests outside the package.
var OpenWith = openWith

// StandInPrefix marks the ids lazyBegin answers BeginTransaction with.
const StandInPrefix = standInPrefix

// LazyAttempts is how many transaction attempts lazyBegin keeps.
func (db *DB) LazyAttempts() int {
	db.lazy.mu.Lock()
	defer db.lazy.mu.Unlock()
	return len(db.lazy.txs)
}
