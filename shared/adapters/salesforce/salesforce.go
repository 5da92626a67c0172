// Package salesforce writes records to Salesforce through the REST API's
// upsert by external id, so a redelivered event updates rather than
// duplicates.
package salesforce

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"fulfillment/shared/runtime/failure"
)

// APIVersion is the REST API version in every request path.
const APIVersion = "v62.0"

// Client upserts records in one Salesforce org.
type Client struct {
	instanceURL string
	token       string
	hc          *http.Client
}

// NewClient returns a client for instanceURL (e.g.
// https://acme.my.salesforce.com) using an OAuth access token. A nil hc gets
// a 10 s timeout.
func NewClient(instanceURL, accessToken string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{instanceURL: strings.TrimRight(instanceURL, "/"), token: accessToken, hc: hc}
}

// apiError is one element of the error array Salesforce answers with.
type apiError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// Upsert creates or updates the sobject record whose externalIDField equals
// externalID. 2xx (201 created, 200/204 updated) is success; errors carry
// Salesforce's errorCode, e.g. INVALID_SESSION_ID or FIELD_CUSTOM_VALIDATION_EXCEPTION.
func (c *Client) Upsert(ctx context.Context, sobject, externalIDField, externalID string, fields map[string]any) error {
	if sobject == "" || externalIDField == "" || externalID == "" {
		return fmt.Errorf("salesforce.Upsert: %w",
			failure.Permanentf("sobject, external id field and value are required (got %q, %q, %q)", sobject, externalIDField, externalID))
	}
	if err := c.patch(ctx, sobject, externalIDField, externalID, fields); err != nil {
		return fmt.Errorf("salesforce.Upsert: %s %s=%s: %w", sobject, externalIDField, externalID, err)
	}
	return nil
}

func (c *Client) patch(ctx context.Context, sobject, field, value string, fields map[string]any) error {
	if fields == nil {
		fields = map[string]any{}
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return failure.Permanent(err)
	}
	u := fmt.Sprintf("%s/services/data/%s/sobjects/%s/%s/%s", c.instanceURL, APIVersion,
		url.PathEscape(sobject), url.PathEscape(field), url.PathEscape(value))
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, bytes.NewReader(body))
	if err != nil {
		return failure.Permanent(failure.Call("salesforce", err))
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return failure.Call("salesforce", err) // network error or timeout: transient
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	// The error is logged and kept in dead_letters, and Salesforce's
	// messages echo the record's fields (a customer's e-mail): keep only
	// the error codes, or a scrubbed body when it is not the error array.
	codes := errorCodes(respBody)
	kept := codes
	if kept == "" {
		kept = failure.Scrub(string(respBody))
	}
	if retryableCode(codes) {
		// Salesforce answers these with 401/403, but a retry fixes them
		// (a rotated token, the API allowance refilling): not permanent.
		return &failure.HTTPError{Service: "salesforce", StatusCode: resp.StatusCode, Body: kept}
	}
	return failure.FromResponse("salesforce", resp, []byte(kept))
}

// retryableCode reports whether Salesforce's error codes name a condition
// that passes with time.
func retryableCode(codes string) bool {
	for _, c := range strings.Split(codes, ",") {
		if c == "INVALID_SESSION_ID" || c == "REQUEST_LIMIT_EXCEEDED" {
			return true
		}
	}
	return false
}

// errorCodes pulls the errorCode values out of Salesforce's error array:
// the only part of it the error keeps.
func errorCodes(body []byte) string {
	var errs []apiError
	if json.Unmarshal(body, &errs) != nil {
		return ""
	}
	var codes []string
	for _, e := range errs {
		if e.ErrorCode != "" {
			codes = append(codes, e.ErrorCode)
		}
	}
	return strings.Join(codes, ",")
}
