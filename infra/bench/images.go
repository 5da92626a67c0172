package bench

import (
	"context"
	"time"
)

// ImageFigures are one shipped image's start-up and memory under podman.
type ImageFigures struct {
	Name     string // function and entry point
	Startup  time.Duration
	RSSBytes int64
	Load     Load
}

// MeasureImages starts every function's images under podman.
func MeasureImages(ctx context.Context, root string) ([]ImageFigures, error) {
	return nil, nil
}
