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

func offlineLicense(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("offline-license", flag.ContinueOnError)
	sub := fs.String("sub", "", "subscription id")
	instance := fs.String("instance", "", "the instance's identifier (its uuid), if known")
	out := fs.String("out", "", "write the license file here (default: print it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("offline-license: -sub is required")
	}
	key, err := license.KeyFromSeed(envOr("LICENSE_SIGNING_KEY", localstack.LicenseSeed))
	if err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	off, err := licensing.IssueOffline(ctx, st, key, *sub, *instance, now())
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(off.LicenseKey+"\n"), 0o600); err != nil {
			return err
		}
		off.LicenseKey = "(written to " + *out + ")"
	}
	return printJSON(off)
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
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	file, err := licensing.ReadUsageFile(f)
	if err != nil {
		return err
	}
	key, err := license.KeyFromSeed(envOr("LICENSE_SIGNING_KEY", localstack.LicenseSeed))
	if err != nil {
		return err
	}
	if err := licensing.CheckUsageLicense(file, key.Public().(ed25519.PublicKey), *sub); err != nil {
		return err
	}
	st, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := licensing.ImportUsage(ctx, st, *sub, file.Usage, now())
	if err != nil {
		return fmt.Errorf("import-usage: %w", err)
	}
	return printJSON(res)
}
