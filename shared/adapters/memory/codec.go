package memory

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unsafe"

	jsoniter "github.com/json-iterator/go"
	"github.com/modern-go/reflect2"

	"fulfillment/shared/adapters/docstore"
)

// codec encodes documents by their `firestore` tags, as the Firestore
// client does, so a document written as one type reads back as another
// with the same field names (a map, a narrower struct).
var codec = func() jsoniter.API {
	api := jsoniter.Config{TagKey: "firestore", SortMapKeys: true, UseNumber: false}.Froze()
	api.RegisterExtension(&firestoreTimes{})
	return api
}()

// firestoreTimes stores times in UTC at microseconds, Firestore's precision.
type firestoreTimes struct{ jsoniter.DummyExtension }

func (*firestoreTimes) CreateEncoder(typ reflect2.Type) jsoniter.ValEncoder {
	switch typ {
	case reflect2.TypeOf(time.Time{}):
		return timeEncoder{}
	case reflect2.TypeOf(&time.Time{}):
		return timePtrEncoder{}
	}
	return nil
}

// CreateDecoder reads times straight from their string: time.Time's own
// UnmarshalJSON would be handed a copy of the raw bytes first.
func (*firestoreTimes) CreateDecoder(typ reflect2.Type) jsoniter.ValDecoder {
	if typ == reflect2.TypeOf(time.Time{}) {
		return timeDecoder{}
	}
	return nil
}

type timeDecoder struct{}

// Decode leaves the time as it was on null, as time.Time's UnmarshalJSON does.
func (timeDecoder) Decode(ptr unsafe.Pointer, iter *jsoniter.Iterator) {
	if iter.ReadNil() {
		return
	}
	s := iter.ReadString()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		iter.ReportError("decode time", fmt.Sprintf("%q: %v", s, err))
		return
	}
	*(*time.Time)(ptr) = t
}

type timePtrEncoder struct{}

func (timePtrEncoder) IsEmpty(ptr unsafe.Pointer) bool { return *(**time.Time)(ptr) == nil }

func (timePtrEncoder) Encode(ptr unsafe.Pointer, stream *jsoniter.Stream) {
	t := *(**time.Time)(ptr)
	if t == nil {
		stream.WriteNil()
		return
	}
	timeEncoder{}.Encode(unsafe.Pointer(t), stream)
}

type timeEncoder struct{}

func (timeEncoder) IsEmpty(ptr unsafe.Pointer) bool { return false }

func (timeEncoder) Encode(ptr unsafe.Pointer, stream *jsoniter.Stream) {
	t := *(*time.Time)(ptr)
	stream.WriteString(t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
}

func encode(v any) ([]byte, error) {
	if v == nil {
		return nil, fmt.Errorf("memory: cannot store a nil document")
	}
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("memory: encode %T: %w", v, err)
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("memory: a document must be a struct or map, not %T", v)
	}
	return b, nil
}

func decode(data []byte, v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("memory: decode into %T: need a non-nil pointer", v)
	}
	if err := codec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("memory: decode into %T: %w", v, err)
	}
	return nil
}

// row is one document as a query sees it: its fields by dotted path.
type row struct {
	id     string
	data   []byte
	fields map[string]any
}

// decodeFields decodes a stored document into the map a row matches on.
func decodeFields(id string, data []byte) (map[string]any, error) {
	var fields map[string]any
	if err := codec.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("memory: decode %s: %w", id, err)
	}
	return fields, nil
}

// field returns the value at a dotted path (DocumentID: the id).
func (r row) field(path string) (any, bool) {
	if path == docstore.DocumentID {
		return r.id, true
	}
	var cur any = r.fields
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (r row) hasAll(paths []string) bool {
	for _, p := range paths {
		if v, ok := r.field(p); !ok || v == nil {
			return false
		}
	}
	return true
}

func (r row) matches(filters []docstore.Filter) bool {
	for _, f := range filters {
		v, ok := r.field(f.Field)
		if !ok {
			return false
		}
		c, comparable := compare(v, f.Value)
		if !comparable {
			return false
		}
		var hold bool
		switch f.Op {
		case docstore.Eq:
			hold = c == 0
		case docstore.Lt:
			hold = c < 0
		case docstore.Le:
			hold = c <= 0
		case docstore.Gt:
			hold = c > 0
		case docstore.Ge:
			hold = c >= 0
		}
		if !hold {
			return false
		}
	}
	return true
}

// compare orders a stored value (as decoded from the document) against a
// Go value; false when their types differ, as Firestore's typed ordering
// never matches a string against a time or a number.
func compare(stored, want any) (int, bool) {
	switch w := want.(type) {
	case time.Time:
		s, ok := stored.(string)
		if !ok {
			return 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false
		}
		return t.Compare(w.UTC().Truncate(time.Microsecond)), true
	case string:
		s, ok := stored.(string)
		return strings.Compare(s, w), ok
	case bool:
		s, ok := stored.(bool)
		if !ok {
			return 0, false
		}
		return boolRank(s) - boolRank(w), true
	}
	wf, ok := number(want)
	if !ok {
		return 0, false
	}
	sf, ok := number(stored)
	if !ok {
		return 0, false
	}
	switch {
	case sf < wf:
		return -1, true
	case sf > wf:
		return 1, true
	}
	return 0, true
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}

// orderValue compares two stored values of one field for sorting: times
// (stored as RFC 3339 text) in time order, numbers numerically, text bytewise.
func orderValue(a, b any) int {
	if as, ok := a.(string); ok {
		if bs, ok := b.(string); ok {
			at, errA := time.Parse(time.RFC3339Nano, as)
			bt, errB := time.Parse(time.RFC3339Nano, bs)
			if errA == nil && errB == nil {
				return at.Compare(bt)
			}
			return strings.Compare(as, bs)
		}
	}
	if c, ok := compare(a, b); ok {
		return c
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func sortRows(rows []row, orderBy []string) error {
	sort.SliceStable(rows, func(i, j int) bool {
		for _, p := range orderBy {
			a, _ := rows[i].field(p)
			b, _ := rows[j].field(p)
			if c := orderValue(a, b); c != 0 {
				return c < 0
			}
		}
		return rows[i].id < rows[j].id
	})
	return nil
}

// compareCursor orders r against a cursor of Go values, one per ordering.
func compareCursor(r row, orderBy []string, cursor []any) int {
	for i, p := range orderBy {
		v, _ := r.field(p)
		c, ok := compare(v, cursor[i])
		if !ok {
			c = strings.Compare(fmt.Sprint(v), fmt.Sprint(cursor[i]))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}
