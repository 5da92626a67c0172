package tracing

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Roots returns the spans of one trace whose parent is not among them
// (normally one: the webhook's server span), oldest first.
func Roots(spans []Span) []Span {
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	var roots []Span
	for _, s := range spans {
		if !ids[s.ParentID] {
			roots = append(roots, s)
		}
	}
	sortByStart(roots)
	return roots
}

// Ours tells the spans of the functions themselves (deliveries, the
// webhook's requests, calls to outside systems) from the client libraries'
// own (Firestore, gRPC), which the brief view leaves out.
func Ours(s Span) bool {
	return s.Scope == "fulfillment" || strings.HasSuffix(s.Scope, "/otelhttp")
}

// Render prints one trace as a tree: service, span name, duration, and the
// error of a failed span, children under their parent by start time. With
// all false, library spans are left out and their children shown under the
// nearest span kept.
func Render(w io.Writer, spans []Span, all bool) {
	if len(spans) == 0 {
		fmt.Fprintln(w, "no spans")
		return
	}
	t := tree{children: map[string][]Span{}, all: all}
	for _, s := range spans {
		t.children[s.ParentID] = append(t.children[s.ParentID], s)
	}
	first, last := spans[0].Start, spans[0].End
	for _, s := range spans {
		if s.Start.Before(first) {
			first = s.Start
		}
		if s.End.After(last) {
			last = s.End
		}
	}
	fmt.Fprintf(w, "trace %s: %d spans, %d services, %s\n", spans[0].TraceID, len(spans), len(Services(spans)), round(last.Sub(first)))
	var top []Span
	for _, r := range Roots(spans) {
		top = append(top, t.shown(r)...)
	}
	t.print(w, top, "")
}

type tree struct {
	children map[string][]Span
	all      bool
}

// shown is s itself when kept, else the kept spans under it.
func (t tree) shown(s Span) []Span {
	if t.all || Ours(s) {
		return []Span{s}
	}
	var out []Span
	for _, c := range t.children[s.SpanID] {
		out = append(out, t.shown(c)...)
	}
	return out
}

func (t tree) print(w io.Writer, spans []Span, indent string) {
	sortByStart(spans)
	for i, s := range spans {
		branch, next := "├─ ", "│  "
		if i == len(spans)-1 {
			branch, next = "└─ ", "   "
		}
		line := fmt.Sprintf("%s%s[%s] %s  %s", indent, branch, s.Service, s.Name, round(s.Duration()))
		if s.Error != "" {
			line += "  ERROR: " + s.Error
		}
		if s.Attributes[IgnoredAttribute] == "true" {
			line += "  (type not handled here)"
		}
		fmt.Fprintln(w, line)
		var kids []Span
		for _, c := range t.children[s.SpanID] {
			kids = append(kids, t.shown(c)...)
		}
		t.print(w, kids, indent+next)
	}
}

// Services lists the services that took part in a trace, sorted.
func Services(spans []Span) []string {
	seen := map[string]bool{}
	for _, s := range spans {
		seen[s.Service] = true
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func sortByStart(spans []Span) {
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
}

func round(d time.Duration) string {
	return d.Round(10 * time.Microsecond).String()
}
