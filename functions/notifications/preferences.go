package notifications

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/notice"
)

// UnsubscribePath is where a customer's opt-out link points: GET shows a
// page that asks, POST opts out (RFC 8058's one-click POST among them).
// A GET alone changes nothing: mail scanners fetch every link they see.
const UnsubscribePath = "/notices/unsubscribe"

// Headers of non-essential e-mails (RFC 2369, RFC 8058): mail clients show
// an unsubscribe button that POSTs to the signed link.
const (
	HeaderListUnsubscribe     = "List-Unsubscribe"
	HeaderListUnsubscribePost = "List-Unsubscribe-Post"
)

// optOutToken names a recipient's preferences (by ContactKey, never the
// address: links end up in logs of proxies and mail gateways) and signs it,
// so only a link we sent can change them.
func optOutToken(key []byte, email string) string {
	contact := store.ContactKey(email)
	return contact + "." + sign(key, contact)
}

func sign(key []byte, contact string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("notice-opt-out\x00" + contact))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifyOptOut returns the contact key a token names, if we signed it.
func verifyOptOut(key []byte, token string) (string, bool) {
	contact, mac, ok := strings.Cut(token, ".")
	if !ok || contact == "" || len(key) == 0 {
		return "", false
	}
	return contact, hmac.Equal([]byte(mac), []byte(sign(key, contact)))
}

// unsubscribe adds the opt-out link to a non-essential e-mail: in its
// footer and as the List-Unsubscribe headers. Without a signing key (or for
// an essential e-mail) there is none: essential ones cannot be muted.
func (f *Function) unsubscribe(e *notice.Email) map[string]string {
	if e.Essential || len(f.d.PreferencesKey) == 0 || f.d.UnsubscribeURL == "" {
		return nil
	}
	link := f.d.UnsubscribeURL + "?token=" + url.QueryEscape(optOutToken(f.d.PreferencesKey, e.To.Email))
	e.Data.UnsubscribeURL = link
	return map[string]string{HeaderListUnsubscribe: "<" + link + ">", HeaderListUnsubscribePost: "List-Unsubscribe=One-Click"}
}

var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>GitLab notices</title></head>
<body style="font-family: sans-serif; color: #333">{{if .Done}}
<p>Done: you will no longer receive renewal and reconciliation notices or trial reminders. Receipts, payment failures and warnings about your subscription are always sent.</p>{{else}}
<form method="post"><p>Stop renewal and reconciliation notices and trial reminders? Receipts, payment failures and warnings about your subscription are always sent.</p>
<input type="hidden" name="token" value="{{.Token}}"><button type="submit">Stop these e-mails</button></form>{{end}}
</body></html>`))

// ServeUnsubscribe answers the opt-out link: a bad or missing signature is
// 403 and changes nothing.
func (f *Function) ServeUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	token := r.FormValue("token") // the query's, or the form's
	contact, ok := verifyOptOut(f.d.PreferencesKey, token)
	if !ok {
		http.Error(w, "this link is not valid", http.StatusForbidden)
		return
	}
	done := r.Method == http.MethodPost
	if done {
		pref := store.NoticePreference{OptOutNonEssential: true, UpdatedAt: f.d.Clock.Now()}
		if err := f.d.Store.SaveNoticePreferenceByKey(r.Context(), contact, pref); err != nil {
			f.d.Logger.ErrorContext(r.Context(), "opt-out not saved", "error", err.Error())
			http.Error(w, "please try again", http.StatusServiceUnavailable)
			return
		}
		f.d.Logger.InfoContext(r.Context(), "customer opted out of non-essential notices", "contact_key", contact)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := unsubscribePage.Execute(w, struct {
		Done  bool
		Token string
	}{done, token}); err != nil {
		f.d.Logger.WarnContext(r.Context(), "unsubscribe page", "error", fmt.Sprint(err))
	}
}
