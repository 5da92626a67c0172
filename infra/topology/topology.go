// Package topology loads the event topology (topology.yaml) and creates it in
// Pub/Sub: topics, push subscriptions to each function, dead-letter topics.
package topology

import (
	_ "embed"
	"fmt"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed topology.yaml
var definition []byte

// Topology is the parsed definition.
type Topology struct {
	Topics            []string            `yaml:"topics"`
	Functions         map[string]Function `yaml:"functions"`
	PullSubscriptions map[string]string   `yaml:"pull_subscriptions"`
	Delivery          Delivery            `yaml:"delivery"`
}

// Function is how events reach one function.
type Function struct {
	Trigger string `yaml:"trigger"`
	Topic   string `yaml:"topic"`
}

// Delivery is the retry and dead-letter policy of every push subscription.
type Delivery struct {
	AckDeadlineSeconds  int32         `yaml:"ack_deadline_seconds"`
	MaxDeliveryAttempts int32         `yaml:"max_delivery_attempts"`
	MinimumBackoff      time.Duration `yaml:"minimum_backoff"`
	MaximumBackoff      time.Duration `yaml:"maximum_backoff"`
}

// Load parses the embedded definition.
func Load() (Topology, error) {
	var t Topology
	if err := yaml.Unmarshal(definition, &t); err != nil {
		return t, fmt.Errorf("topology.Load: %w", err)
	}
	return t, nil
}

// DeadLetterTopic is the dead-letter topic (and its pull subscription) of a function.
func DeadLetterTopic(function string) string { return function + "-dead-letter" }

// Subscribers lists the functions fed by a topic, sorted by name.
func (t Topology) Subscribers() []string {
	var out []string
	for name, f := range t.Functions {
		if f.Topic != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
