// Package config reads a function's settings from the environment (Secret
// Manager values arrive there on GCP) into one struct per function, with
// github.com/caarlos0/env: each field's `env` tag names its variable and
// `envDefault` its default, used when the variable is unset or empty. Every
// setting has a default that runs against the local stack, except secrets,
// which are `required,notEmpty`. A missing or bad value stops the function at
// start with an error naming the variable.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Common are the settings every function has; each function's settings
// struct embeds it.
type Common struct {
	// Project is the GCP project whose Firestore and Pub/Sub the function uses.
	Project string `env:"GOOGLE_CLOUD_PROJECT" envDefault:"fulfillment-local"`
	// Database is the Firestore database the function reads and writes.
	// Every function uses "(default)" except the public webhook on GCP,
	// which terraform points at a database of its own ("webhooks") that is
	// the only one its identity may reach (docs/deploy.md: Data access).
	Database string `env:"FIRESTORE_DATABASE" envDefault:"(default)"`
	// DeadLetterTopic receives the events the function gives up on; empty
	// for a function that dead-letters nothing.
	DeadLetterTopic string `env:"DEAD_LETTER_TOPIC"`
}

// CommonSettings returns the common settings of a struct that embeds Common.
func (c Common) CommonSettings() Common { return c }

// Settings is a function's settings struct: it embeds Common.
type Settings interface {
	CommonSettings() Common
}

// Validator is a settings struct with checks across its fields, run by Read
// after every variable is parsed.
type Validator interface {
	Validate() error
}

// Read fills a settings struct of type C from the environment and validates
// it. Every missing or bad variable is reported at once.
func Read[C any]() (C, error) {
	var c C
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("config: %w", nameVariables(reflect.TypeOf(c), err))
	}
	if v, ok := any(&c).(Validator); ok {
		if err := v.Validate(); err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
	}
	return c, nil
}

// nameVariables rewrites the library's parse errors, which name the Go
// field, to name the variable an operator sets.
func nameVariables(t reflect.Type, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if key := variableOf(t, pe.Name); key != "" {
				e = fmt.Errorf("%s: %w", key, pe.Err)
			}
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// variableOf finds the variable of the field called name in t or in the
// structs it holds.
func variableOf(t reflect.Type, name string) string {
	if t.Kind() != reflect.Struct {
		return ""
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == name {
			if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
				return key
			}
		}
		if key := variableOf(f.Type, name); key != "" {
			return key
		}
	}
	return ""
}

// List is a comma-separated setting ("a, b,c"): items are trimmed and empty
// ones dropped.
type List []string

// UnmarshalText splits text.
func (l *List) UnmarshalText(text []byte) error {
	*l = nil
	for _, s := range strings.Split(string(text), ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// Ints is a comma-separated list of integers ("3, 7, 14"), read as List is.
type Ints []int

// UnmarshalText parses text.
func (n *Ints) UnmarshalText(text []byte) error {
	var items List
	_ = items.UnmarshalText(text)
	*n = make(Ints, 0, len(items))
	for _, s := range items {
		i, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("item %q is not an integer", s)
		}
		*n = append(*n, i)
	}
	return nil
}
