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

// Render prints one trace as a tree: service, span name, duration, and the
// error of a failed span, children indented under their parent by start time.
func Render(w io.Writer, spans []Span) {
	if len(spans) == 0 {
		fmt.Fprintln(w, "no spans")
		return
	}
	children := map[string][]Span{}
	for _, s := range spans {
		children[s.ParentID] = append(children[s.ParentID], s)
	}
	roots := Roots(spans)
	first, last := roots[0].Start, roots[0].End
	for _, s := range spans {
		if s.Start.Before(first) {
			first = s.Start
		}
		if s.End.After(last) {
			last = s.End
		}
	}
	fmt.Fprintf(w, "trace %s: %d spans, %d services, %s\n", spans[0].TraceID, len(spans), len(services(spans)), round(last.Sub(first)))
	for i, r := range roots {
		render(w, r, children, "", i == len(roots)-1)
	}
}

func render(w io.Writer, s Span, children map[string][]Span, indent string, last bool) {
	branch, next := "├─ ", "│  "
	if last {
		branch, next = "└─ ", "   "
	}
	line := fmt.Sprintf("%s%s[%s] %s  %s", indent, branch, s.Service, s.Name, round(s.Duration()))
	if s.Error != "" {
		line += "  ERROR: " + s.Error
	}
	fmt.Fprintln(w, line)
	kids := children[s.SpanID]
	sortByStart(kids)
	for i, c := range kids {
		render(w, c, children, indent+next, i == len(kids)-1)
	}
}

func services(spans []Span) []string {
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

// Services lists the services that took part in a trace, sorted.
func Services(spans []Span) []string { return services(spans) }

func sortByStart(spans []Span) {
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].Start.Before(spans[j].Start) })
}

func round(d time.Duration) string {
	return strings.TrimSpace(d.Round(10 * time.Microsecond).String())
}
