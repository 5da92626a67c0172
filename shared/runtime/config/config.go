// Package config reads a function's settings from the environment (Secret
// Manager values arrive there on GCP). Every setting has a default that runs
// against the local stack, except secrets; a bad value stops the function at
// start with an error naming the variable.
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env collects settings and the first error met, so a function reads all of
// its settings and checks once.
type Env struct {
	errs []string
}

// String returns the variable or def.
func (e *Env) String(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// Required returns the variable, noting an error when it is empty.
func (e *Env) Required(key string) string {
	v := os.Getenv(key)
	if v == "" {
		e.errs = append(e.errs, key+" is required")
	}
	return v
}

// List splits a comma-separated variable, dropping empty items.
func (e *Env) List(key string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(key), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Int returns the variable as an integer, or def.
func (e *Env) Int(key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s=%q is not an integer", key, v))
	}
	return n
}

// Ints returns a comma-separated list of integers ("3,7,14"), or def.
func (e *Env) Ints(key string, def []int) []int {
	items := e.List(key)
	if len(items) == 0 {
		return def
	}
	out := make([]int, 0, len(items))
	for _, v := range items {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Sprintf("%s item %q is not an integer", key, v))
		}
		out = append(out, n)
	}
	return out
}

// Duration returns the variable as a time.Duration ("90s", "168h"), or def.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Sprintf("%s=%q is not a duration", key, v))
	}
	return d
}

// Err reports every bad or missing setting at once.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: %s", strings.Join(e.errs, "; "))
}

// Common are the settings every function has.
type Common struct {
	Project         string
	DeadLetterTopic string
}

// ReadCommon reads the common settings.
func (e *Env) ReadCommon() Common {
	return Common{
		Project:         e.String("GOOGLE_CLOUD_PROJECT", "fulfillment-local"),
		DeadLetterTopic: e.String("DEAD_LETTER_TOPIC", ""),
	}
}
