package salesforce_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"fulfillment/shared/adapters/salesforce"
	"fulfillment/shared/runtime/failure"
	"fulfillment/shared/testsupport/testdouble"
)

const token = "00Dxx0000001gPL!AQ4AQFakeToken"

func startDouble(t *testing.T) *testdouble.Salesforce {
	t.Helper()
	sf, err := testdouble.StartSalesforce("127.0.0.1:0", token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sf.Close() })
	return sf
}

func TestUpsertCreatesThenUpdates(t *testing.T) {
	t.Parallel()
	sf := startDouble(t)
	c := salesforce.NewClient(sf.URL(), token, nil)
	ctx := context.Background()

	if err := c.Upsert(ctx, "Order__c", "Order_Id__c", "ord_1", map[string]any{"Status__c": "Paid", "Amount__c": 120.5}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.Upsert(ctx, "Order__c", "Order_Id__c", "ord_1", map[string]any{"Status__c": "Provisioned"}); err != nil {
		t.Fatalf("update: %v", err)
	}
	rec, ok := sf.Record("Order__c", "ord_1")
	if !ok || rec["Status__c"] != "Provisioned" || rec["Amount__c"] != 120.5 || rec["Order_Id__c"] != "ord_1" {
		t.Fatalf("record = %v, %v", rec, ok)
	}
	calls := sf.Calls()
	if len(calls) != 2 || calls[0].Status != http.StatusCreated || calls[1].Status/100 != 2 {
		t.Fatalf("calls = %+v", calls)
	}
	c0 := calls[0]
	if c0.Method != http.MethodPatch || c0.Path != "/services/data/v62.0/sobjects/Order__c/Order_Id__c/ord_1" {
		t.Errorf("request line = %s %s", c0.Method, c0.Path)
	}
	if c0.Headers["Authorization"] != "Bearer "+token {
		t.Errorf("Authorization = %q", c0.Headers["Authorization"])
	}
}

func TestUpsertErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		token     string
		fault     int
		fields    map[string]any
		extID     string
		permanent bool
		code      string // errorCode expected in the error text
	}{
		{name: "expired token", token: "expired", permanent: false, code: "INVALID_SESSION_ID"},
		{name: "API limit", fault: 403, permanent: false, code: "REQUEST_LIMIT_EXCEEDED"},
		{name: "Id in body", fields: map[string]any{"Id": "a0D1"}, permanent: true, code: "INVALID_FIELD_FOR_INSERT_UPDATE"},
		{name: "503", fault: 503, permanent: false, code: "SERVER_UNAVAILABLE"},
		{name: "429", fault: 429, permanent: false},
		{name: "500", fault: 500, permanent: false, code: "UNKNOWN_EXCEPTION"},
		{name: "missing external id", extID: "-", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sf := startDouble(t)
			tok := token
			if tt.token != "" {
				tok = tt.token
			}
			if tt.fault != 0 {
				sf.FailNext(1, tt.fault)
			}
			extID := "ord_1"
			if tt.extID == "-" {
				extID = ""
			}
			err := salesforce.NewClient(sf.URL(), tok, nil).Upsert(context.Background(), "Order__c", "Order_Id__c", extID, tt.fields)
			if err == nil {
				t.Fatal("Upsert succeeded, want an error")
			}
			if got := failure.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (err: %v)", got, tt.permanent, err)
			}
			if tt.code != "" && !strings.Contains(err.Error(), tt.code) {
				t.Errorf("error %q lacks errorCode %s", err, tt.code)
			}
		})
	}
}

func TestUpsertEscapesExternalID(t *testing.T) {
	t.Parallel()
	sf := startDouble(t)
	c := salesforce.NewClient(sf.URL(), token, nil)
	if err := c.Upsert(context.Background(), "Account", "Ext__c", "a b?c", nil); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	if _, ok := sf.Record("Account", "a b?c"); !ok {
		t.Fatalf("record not stored under the unescaped id; calls: %+v", sf.Calls())
	}
}

// Salesforce's error messages echo the record's fields. The error (logged,
// kept in dead_letters) keeps only the error codes, and no e-mail address
// from a body that is not Salesforce's error array.
func TestUpsertErrorKeepsCodesNotCustomerFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, code string
		status           int
	}{
		{name: "error array", status: http.StatusBadRequest, code: "DUPLICATE_VALUE",
			body: `[{"message":"duplicate value found: Email__c duplicates value buyer@example.com on record with id: a0D1","errorCode":"DUPLICATE_VALUE","fields":["Email__c"]}]`},
		{name: "retryable code", status: http.StatusUnauthorized, code: "INVALID_SESSION_ID",
			body: `[{"message":"Session expired for buyer@example.com","errorCode":"INVALID_SESSION_ID"}]`},
		{name: "not JSON", status: http.StatusBadGateway,
			body: `<html>upstream failed for buyer@example.com</html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			err := salesforce.NewClient(srv.URL, token, nil).Upsert(context.Background(), "Contact", "Ext__c", "c_1",
				map[string]any{"Email__c": "buyer@example.com"})
			var he *failure.HTTPError
			if !errors.As(err, &he) || he.StatusCode != tt.status {
				t.Fatalf("Upsert = %v, want an HTTPError %d", err, tt.status)
			}
			for _, text := range []string{err.Error(), he.Body} {
				if strings.Contains(text, "buyer@example.com") || strings.Contains(text, "duplicates value") || strings.Contains(text, "Session expired") {
					t.Errorf("error keeps the body's customer fields: %q", text)
				}
				if !strings.Contains(text, tt.code) {
					t.Errorf("error %q lacks errorCode %s", text, tt.code)
				}
			}
			if tt.code != "" && he.Body != tt.code {
				t.Errorf("HTTPError.Body = %q, want only the error code %s", he.Body, tt.code)
			}
		})
	}
}
