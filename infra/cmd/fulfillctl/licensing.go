package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"fulfillment/functions/licensing"
	"fulfillment/infra/localstack"
	"fulfillment/shared/adapters/store"
	"fulfillment/shared/domain/catalog"
	"fulfillment/shared/domain/license"
	"fulfillment/shared/domain/subscription"
)

// Cloud licensing commands (functions/licensing, docs/licensing.md).
const licensingUsage = `  activation-code ID      the self-managed subscription's activation code, shown once
  offline-license -sub ID [-instance ID] [-out FILE]
                          issue an offline license for the term (no sync; an air-gapped instance)
  import-usage -sub ID FILE
                          import an instance's usage file (CSV or JSON, docs/licensing.md),
                          feeding reconciliation as seat links do
`

// licensingCommand runs a cloud licensing command; ok is false for a
// command it does not know.
func licensingCommand(ctx context.Context, cmd string, args []string) (ok bool, err error) {
	switch cmd {
	case "activation-code":
		return true, activationCode(ctx, args)
	case "offline-license":
		return true, offlineLicense(ctx, args)
	case "import-usage":
		return true, importUsage(ctx, args)
	}
	return false, nil
}

func activationCode(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: activation-code SUBSCRIPTION_ID")
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	code, err := revealCode(ctx, st, args[0])
	if err != nil {
		return err
	}
	return printJSON(code)
}

// revealCode is what show prints of a subscription's activation code: the
// plaintext the first time (read from the outgoing event provisioning
// recorded, while its dedupe record lasts), and only that it was shown
// after. It says nothing for a subscription without a code.
func revealCode(ctx context.Context, st *store.Store, id string) (map[string]any, error) {
	cl, found, err := st.CloudLicense(ctx, nil, id)
	if err != nil || !found {
		return nil, err
	}
	out := map[string]any{"issued_at": cl.CodeIssuedAt, "activated": cl.Activated(), "instance_id": cl.InstanceID,
		"last_sync_at": cl.LastSyncAt, "license_serial": cl.Serial, "offline": cl.Offline}
	if cl.CodeShown {
		out["activation_code"] = "(shown once already; the customer received it)"
		return out, nil
	}
	rec, found, err := st.Processed(ctx, nil, cl.CodeEventKey)
	if err != nil {
		return nil, err
	}
	code := ""
	for _, o := range rec.Outgoing {
		var e struct {
			Type string                       `json:"type"`
			Data catalog.ActivationCodeIssued `json:"data"`
		}
		if json.Unmarshal([]byte(o.Event), &e) == nil && e.Type == catalog.LicenseActivationCodeIssued {
			code = e.Data.ActivationCode
		}
	}
	if !found || code == "" {
		out["activation_code"] = "(no longer available here; the customer received it)"
		return out, nil
	}
	if _, err := st.UpdateCloudLicense(ctx, id, false, func(_ *subscription.Subscription, c *store.CloudLicense) (bool, error) {
		c.CodeShown = true
		return true, nil
	}); err != nil {
		return nil, err
	}
	out["activation_code"] = code
	return out, nil
}

// offlineRequest is what offline-license was asked for.
type offlineRequest struct{ sub, instance, out string }

func offlineLicense(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("offline-license", flag.ContinueOnError)
	var req offlineRequest
	fs.StringVar(&req.sub, "sub", "", "subscription id")
	fs.StringVar(&req.instance, "instance", "", "the instance's identifier (its uuid), if known")
	fs.StringVar(&req.out, "out", "", "write the license file here (default: print it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if req.sub == "" {
		return errors.New("offline-license: -sub is required")
	}
	return withStore(ctx, func(st *store.Store) error {
		off, err := issueOfflineLicense(ctx, st, req)
		if err != nil {
			return err
		}
		return printJSON(off)
	})
}

// issueOfflineLicense issues req's offline license and writes it to req.out
// when set (then the printed result names the file instead of the key).
func issueOfflineLicense(ctx context.Context, st *store.Store, req offlineRequest) (licensing.OfflineLicense, error) {
	key, err := signingKey()
	if err != nil {
		return licensing.OfflineLicense{}, err
	}
	off, err := licensing.IssueOffline(ctx, st, key, req.sub, req.instance, now())
	if err != nil {
		return licensing.OfflineLicense{}, err
	}
	if req.out != "" {
		if err := os.WriteFile(req.out, []byte(off.LicenseKey+"\n"), 0o600); err != nil {
			return licensing.OfflineLicense{}, err
		}
		off.LicenseKey = "(written to " + req.out + ")"
	}
	return off, nil
}

func importUsage(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import-usage", flag.ContinueOnError)
	sub := fs.String("sub", "", "subscription id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" || fs.NArg() != 1 {
		return errors.New("usage: import-usage -sub ID FILE")
	}
	return withStore(ctx, func(st *store.Store) error {
		res, err := importUsageFile(ctx, st, *sub, fs.Arg(0))
		if err != nil {
			return err
		}
		return printJSON(res)
	})
}

// importUsageFile imports the usage file at path into subscription sub,
// once the file's license key (if it names one) is found to be sub's.
func importUsageFile(ctx context.Context, st *store.Store, sub, path string) (licensing.ImportResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return licensing.ImportResult{}, err
	}
	defer f.Close()
	file, err := licensing.ReadUsageFile(f)
	if err != nil {
		return licensing.ImportResult{}, err
	}
	key, err := signingKey()
	if err != nil {
		return licensing.ImportResult{}, err
	}
	if err := licensing.CheckUsageLicense(file, key.Public().(ed25519.PublicKey), sub); err != nil {
		return licensing.ImportResult{}, err
	}
	res, err := licensing.ImportUsage(ctx, st, sub, file.Usage, now())
	if err != nil {
		return licensing.ImportResult{}, fmt.Errorf("import-usage: %w", err)
	}
	return res, nil
}

// signingKey is the license signing key: LICENSE_SIGNING_KEY, or the local
// stack's.
func signingKey() (ed25519.PrivateKey, error) {
	return license.KeyFromSeed(envOr("LICENSE_SIGNING_KEY", localstack.LicenseSeed))
}

// withStore runs do on the operator's store, closed after.
func withStore(ctx context.Context, do func(*store.Store) error) error {
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return do(st)
}
