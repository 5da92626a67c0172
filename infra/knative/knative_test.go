// Package knative_test checks the Knative manifests with Knative's own API
// types and validation (the webhook a cluster runs on apply), and that they
// agree with the functions, the event topology and each func.yaml.
package knative_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	yamlv3 "gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"fulfillment/infra/topology"
)

// knativeObject is what Knative's admission webhook does to an object.
type knativeObject interface {
	apis.Defaultable
	apis.Validatable
}

// manifests holds every object of infra/knative/*.yaml, decoded strictly
// (an unknown or misspelt field fails) into its API type.
type manifests struct {
	services    map[string]*servingv1.Service
	triggers    []*eventingv1.Trigger
	brokers     map[string]*eventingv1.Broker
	pingSources map[string]*sourcesv1.PingSource
	configMaps  map[string]*corev1.ConfigMap
	files       map[string][]string // file => kinds/names it holds
	invalid     []string            // what Knative's validation said, warnings included
}

func load(t *testing.T) manifests {
	t.Helper()
	m := manifests{
		services: map[string]*servingv1.Service{}, brokers: map[string]*eventingv1.Broker{},
		pingSources: map[string]*sourcesv1.PingSource{}, configMaps: map[string]*corev1.ConfigMap{},
		files: map[string][]string{},
	}
	paths, err := filepath.Glob("*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests (%v)", err)
	}
	for _, path := range paths {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(src)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var u unstructured.Unstructured
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			m.files[path] = append(m.files[path], u.GetKind()+"/"+u.GetName())
			m.add(t, path, u.GroupVersionKind().String(), doc)
		}
	}
	return m
}

func (m *manifests) add(t *testing.T, path, gvk string, doc []byte) {
	t.Helper()
	decode := func(into any) {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("%s: %s: %v", path, gvk, err)
		}
	}
	var obj knativeObject
	switch gvk {
	case "serving.knative.dev/v1, Kind=Service":
		s := &servingv1.Service{}
		decode(s)
		m.services[s.Name], obj = s, s
	case "eventing.knative.dev/v1, Kind=Trigger":
		tr := &eventingv1.Trigger{}
		decode(tr)
		m.triggers, obj = append(m.triggers, tr), tr
	case "eventing.knative.dev/v1, Kind=Broker":
		b := &eventingv1.Broker{}
		decode(b)
		m.brokers[b.Name], obj = b, b
	case "sources.knative.dev/v1, Kind=PingSource":
		p := &sourcesv1.PingSource{}
		decode(p)
		m.pingSources[p.Name], obj = p, p
	case "/v1, Kind=ConfigMap":
		c := &corev1.ConfigMap{}
		decode(c)
		m.configMaps[c.Name] = c
		return
	case "/v1, Kind=Namespace":
		decode(&corev1.Namespace{})
		return
	default:
		t.Fatalf("%s: unexpected %s", path, gvk)
	}
	ctx := apis.WithinCreate(context.Background())
	obj.SetDefaults(ctx)
	if err := obj.Validate(ctx); err != nil {
		m.invalid = append(m.invalid, path+": "+gvk+": "+err.Error())
	}
}

func functionNames(t *testing.T) []string {
	t.Helper()
	names, err := topology.FunctionDirs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func envNames(s *servingv1.Service) []string {
	var names []string
	for _, e := range s.Spec.Template.Spec.Containers[0].Env {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

func env(s *servingv1.Service, name string) string {
	for _, e := range s.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// Errors and warnings both fail: a warning today (insecure defaults) is
// what Knative says it may refuse tomorrow.
func TestManifestsPassKnativeValidation(t *testing.T) {
	m := load(t)
	for _, problem := range m.invalid {
		t.Error(problem)
	}
	if len(m.services) == 0 || len(m.triggers) == 0 || len(m.brokers) == 0 {
		t.Fatalf("services %d, triggers %d, brokers %d: want some of each", len(m.services), len(m.triggers), len(m.brokers))
	}
}

func TestEveryFunctionHasItsService(t *testing.T) {
	m := load(t)
	topo, err := topology.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range functionNames(t) {
		s, ok := m.services[name]
		if !ok {
			t.Errorf("no Knative Service for function %s (infra/knative/%s.yaml)", name, name)
			continue
		}
		if got := m.files[name+".yaml"]; len(got) == 0 || got[0] != "Service/"+name {
			t.Errorf("infra/knative/%s.yaml holds %v, want its Service first", name, got)
		}
		c := s.Spec.Template.Spec.Containers[0]
		if want := "ko://fulfillment/functions/" + name + "/cmd/knative"; c.Image != want {
			t.Errorf("%s: image %q, want %q", name, c.Image, want)
		}
		// func-go binds 127.0.0.1 unless told otherwise: unreachable in a pod.
		if env(s, "LISTEN_ADDRESS") != "0.0.0.0:8080" {
			t.Errorf("%s: LISTEN_ADDRESS = %q, want 0.0.0.0:8080", name, env(s, "LISTEN_ADDRESS"))
		}
		if env(s, "DEAD_LETTER_TOPIC") != topology.DeadLetterTopic(name) {
			t.Errorf("%s: DEAD_LETTER_TOPIC = %q, want %s", name, env(s, "DEAD_LETTER_TOPIC"), topology.DeadLetterTopic(name))
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				ref := e.ValueFrom.ConfigMapKeyRef
				if cm := m.configMaps[ref.Name]; cm == nil || cm.Data[ref.Key] == "" {
					t.Errorf("%s: %s reads ConfigMap %s key %s, which shared.yaml does not set", name, e.Name, ref.Name, ref.Key)
				}
			}
		}
		// Only HTTP functions face callers outside the cluster (the webhook;
		// an authenticated HTTP function checks its callers itself); a
		// function fed by the Broker stays inside.
		external := s.Labels["networking.knative.dev/visibility"] != "cluster-local"
		if http := topo.Functions[name].Trigger == "http"; external && !http || name == "checkout-webhook" && !external {
			t.Errorf("%s: reachable from outside the cluster = %v, but it is %s", name, external, map[bool]string{true: "an HTTP function", false: "fed by the Broker"}[http])
		}
	}
}

func TestEveryPushedFunctionHasATrigger(t *testing.T) {
	m := load(t)
	topo, err := topology.Load()
	if err != nil {
		t.Fatal(err)
	}
	subscribed := map[string]bool{}
	for _, tr := range m.triggers {
		if _, ok := m.brokers[tr.Spec.Broker]; !ok {
			t.Errorf("trigger %s: broker %q is not defined", tr.Name, tr.Spec.Broker)
		}
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || ref.Kind != "Service" || m.services[ref.Name] == nil {
			t.Errorf("trigger %s does not deliver to one of our Services", tr.Name)
			continue
		}
		if len(tr.Spec.Filters) == 0 && tr.Spec.Filter == nil {
			t.Errorf("trigger %s has no filter: %s would get every event", tr.Name, ref.Name)
		}
		subscribed[ref.Name] = true
	}
	for name, f := range topo.Functions {
		if f.Topic != "" && !subscribed[name] {
			t.Errorf("%s is pushed from %s on GCP but no Trigger delivers to it on Knative", name, f.Topic)
		}
		if f.Topic == "" && subscribed[name] {
			t.Errorf("%s is HTTP-only but a Trigger delivers to it", name)
		}
	}
	for _, b := range m.brokers {
		if d := b.Spec.Delivery; d == nil || d.Retry == nil || int(*d.Retry)+1 != int(topo.Delivery.MaxDeliveryAttempts) {
			t.Errorf("broker %s: retries must match the topology's %d delivery attempts", b.Name, topo.Delivery.MaxDeliveryAttempts)
		}
	}
}

func TestTicksAreScheduled(t *testing.T) {
	m := load(t)
	for name, schedule := range map[string]string{"renewal-ticks": "0 * * * *", "notices-sweep": "*/10 * * * *"} {
		p, ok := m.pingSources[name]
		if !ok {
			t.Errorf("no PingSource %s", name)
			continue
		}
		if p.Spec.Schedule != schedule {
			t.Errorf("PingSource %s: schedule %q, want %q (as terraform's Scheduler job)", name, p.Spec.Schedule, schedule)
		}
	}
}

// funcYAML is the part of a func.yaml (func CLI spec 0.36) the deploy reads.
type funcYAML struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Run   struct {
		Envs []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"envs"`
	} `yaml:"run"`
	Deploy struct {
		Namespace string `yaml:"namespace"`
		Image     string `yaml:"image"`
		Labels    []struct {
			Key   string `yaml:"key"`
			Value string `yaml:"value"`
		} `yaml:"labels"`
	} `yaml:"deploy"`
}

// func deploy --build=false --image=<digest> and `ko apply -f infra/knative/`
// must give a function the same settings and visibility.
func TestFuncYAMLAgreesWithTheService(t *testing.T) {
	m := load(t)
	for _, name := range functionNames(t) {
		src, err := os.ReadFile(filepath.Join("..", "..", "functions", name, "func.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var f funcYAML
		if err := yamlv3.Unmarshal(src, &f); err != nil {
			t.Fatalf("%s/func.yaml: %v", name, err)
		}
		s := m.services[name]
		if s == nil {
			continue // reported by TestEveryFunctionHasItsService
		}
		if f.Name != name || f.Deploy.Namespace != s.Namespace || f.Image != "" || f.Deploy.Image != "" {
			t.Errorf("%s/func.yaml: name %q namespace %q image %q/%q; want %s in %s with no image (it is built by ko)", name, f.Name, f.Deploy.Namespace, f.Image, f.Deploy.Image, name, s.Namespace)
		}
		var names []string
		for _, e := range f.Run.Envs {
			names = append(names, e.Name)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != strings.Join(envNames(s), ",") {
			t.Errorf("%s: func.yaml sets %v, the Service %v", name, names, envNames(s))
		}
		local := false
		for _, l := range f.Deploy.Labels {
			local = local || l.Key == "networking.knative.dev/visibility" && l.Value == "cluster-local"
		}
		if local != (s.Labels["networking.knative.dev/visibility"] == "cluster-local") {
			t.Errorf("%s: func.yaml and the Service disagree on cluster-local visibility", name)
		}
	}
}
