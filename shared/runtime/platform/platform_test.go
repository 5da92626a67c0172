package platform

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"fulfillment/shared/adapters/firestore"
	"fulfillment/shared/runtime/config"
	"fulfillment/shared/runtime/entrypoint"
)

type settings struct {
	config.Common
	Key string `env:"PLATFORM_TEST_KEY,required,notEmpty"`
}

// A function whose settings are bad stops at start, naming the variable,
// before any client is opened or its constructor runs.
func TestSetupStopsOnBadSettingsBeforeBuilding(t *testing.T) {
	t.Setenv("PLATFORM_TEST_KEY", "")
	built := false
	setup := Setup(func(context.Context, Wiring[settings]) (entrypoint.Function, error) {
		built = true
		return nil, nil
	})
	_, err := setup(context.Background(), slog.New(slog.DiscardHandler), entrypoint.Hooks{})
	if err == nil || !strings.Contains(err.Error(), "PLATFORM_TEST_KEY") {
		t.Fatalf("Setup error = %v, want one naming PLATFORM_TEST_KEY", err)
	}
	if built {
		t.Error("the constructor ran with bad settings")
	}
}

// The store is opened on FIRESTORE_DATABASE's database: the webhook's own on
// GCP, (default) otherwise. Nothing is dialled: both clients connect lazily,
// here to an address nothing listens on.
func TestOpenUsesTheConfiguredDatabase(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	for database, want := range map[string]string{
		"(default)": "projects/p/databases/(default)/documents/webhook_events/evt_1",
		"":          "projects/p/databases/(default)/documents/webhook_events/evt_1",
		"webhooks":  "projects/p/databases/webhooks/documents/webhook_events/evt_1",
	} {
		p, err := Open(context.Background(), config.Common{Project: "p", Database: database})
		if err != nil {
			t.Fatalf("Open(%q): %v", database, err)
		}
		db, ok := p.Store.DB.(*firestore.DB)
		if !ok {
			t.Fatalf("Open's store is a %T, want *firestore.DB", p.Store.DB)
		}
		if got := db.Client.Doc("webhook_events/evt_1").Path; got != want {
			t.Errorf("Database %q: a document is %s, want %s", database, got, want)
		}
		_ = p.Close()
	}
}
