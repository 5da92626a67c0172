package firestore_test

import (
	"context"
	"testing"

	"fulfillment/shared/adapters/docstore"
	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/testsupport/docstoretest"
	"fulfillment/shared/testsupport/emulator"
)

func TestMain(m *testing.M) { emulator.RunTests(m) }

func open(t *testing.T) docstore.DB {
	db, err := firestore.Open(context.Background(), emulator.NewProject("contract"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestRepositories(t *testing.T) { docstoretest.RunRepositories(t, open) }

func TestContract(t *testing.T) { docstoretest.Run(t, open) }
