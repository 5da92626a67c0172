package platform

import (
	"context"
	"log/slog"
	"strings"
	"testing"

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
