package testdouble

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
)

// Salesforce doubles the REST API's upsert by external id
// (PATCH /services/data/vXX.X/sobjects/{sobject}/{field}/{value}).
type Salesforce struct {
	*Server
	token string

	mu      sync.Mutex
	records map[string]map[string]any // sobject + "/" + external id -> fields
	nextID  int
}

// sfError is one element of Salesforce's error array.
type sfError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// StartSalesforce starts a Salesforce double that accepts "Bearer <token>".
func StartSalesforce(addr, token string) (*Salesforce, error) {
	sf := &Salesforce{token: token, records: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("PATCH /services/data/{version}/sobjects/{sobject}/{field}/{value}", sf.upsert)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		sfFail(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
	})
	s, err := start(addr, mux, options{
		headers:   []string{"Authorization", "Content-Type"},
		faultBody: sfFaultBody,
		onReset:   sf.reset,
	})
	if err != nil {
		return nil, err
	}
	sf.Server = s
	return sf, nil
}

// Record returns a copy of the fields stored for sobject and external id.
func (sf *Salesforce) Record(sobject, externalID string) (map[string]any, bool) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	rec, ok := sf.records[sobject+"/"+externalID]
	return maps.Clone(rec), ok
}

func (sf *Salesforce) reset() {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	sf.records = map[string]map[string]any{}
}

func (sf *Salesforce) upsert(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+sf.token {
		sfFail(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
		return
	}
	fields, err := decodeObject(r)
	if err != nil {
		sfFail(w, http.StatusBadRequest, "JSON_PARSER_ERROR", err.Error())
		return
	}
	if _, ok := fields["Id"]; ok {
		sfFail(w, http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: Id.")
		return
	}
	id, created := sf.store(r.PathValue("sobject"), r.PathValue("field"), r.PathValue("value"), fields)
	status := http.StatusOK // an update since API v46.0; older versions answer 204
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"id": id, "success": true, "errors": []any{}, "created": created})
}

// store merges fields into the record, creating it (with a fake 18-char
// record id) when the external id is new.
func (sf *Salesforce) store(sobject, field, value string, fields map[string]any) (string, bool) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	key := sobject + "/" + value
	rec, ok := sf.records[key]
	if !ok {
		sf.nextID++
		rec = map[string]any{"Id": fmt.Sprintf("a0D%015d", sf.nextID), field: value}
		sf.records[key] = rec
	}
	maps.Copy(rec, fields)
	return rec["Id"].(string), !ok
}

func sfFail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, []sfError{{Message: msg, ErrorCode: code}})
}

func sfFaultBody(status int) []byte {
	code := "UNKNOWN_EXCEPTION"
	switch status {
	case http.StatusServiceUnavailable:
		code = "SERVER_UNAVAILABLE"
	case http.StatusForbidden: // how Salesforce reports an exhausted API allowance
		code = "REQUEST_LIMIT_EXCEEDED"
	}
	b, _ := json.Marshal([]sfError{{Message: http.StatusText(status), ErrorCode: code}})
	return b
}
