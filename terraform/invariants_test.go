// Package terraform_test checks the terraform in this directory without a
// provider (none can be downloaded here, so `tofu validate` cannot run): it
// parses every file with HCL, the parser terraform itself uses, and asserts
// what must stay true as functions are added.
package terraform_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"fulfillment/infra/topology"
)

// file is one parsed .tf or .tfvars file.
type file struct {
	path string // relative to terraform/
	src  []byte
	body *hclsyntax.Body
}

func parseAll(t *testing.T) map[string]file {
	t.Helper()
	files := map[string]file{}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".tf") || strings.HasSuffix(path, ".tfvars") || strings.HasSuffix(path, ".hcl")) {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		parsed, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("%s: %s", path, diags.Error())
			return nil
		}
		files[filepath.ToSlash(path)] = file{path: path, src: src, body: parsed.Body.(*hclsyntax.Body)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no terraform files found")
	}
	return files
}

// blocks are the blocks of a type (and first labels) in the files under dir.
func blocks(files map[string]file, dir, typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for path, f := range files {
		if filepath.Dir(path) != dir {
			continue
		}
		for _, b := range f.body.Blocks {
			if b.Type == typ && len(b.Labels) >= len(labels) && equal(b.Labels[:len(labels)], labels) {
				out = append(out, b)
			}
		}
	}
	return out
}

func one(t *testing.T, files map[string]file, dir, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	found := blocks(files, dir, typ, labels...)
	if len(found) != 1 {
		t.Fatalf("%s: %d %s %v blocks, want 1", dir, len(found), typ, labels)
	}
	return found[0]
}

func child(b *hclsyntax.Block, typ string) *hclsyntax.Block {
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			return c
		}
	}
	return nil
}

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// source is an expression's text as written.
func source(files map[string]file, e hclsyntax.Expression) string {
	r := e.Range()
	return string(files[filepath.ToSlash(r.Filename)].src[r.Start.Byte:r.End.Byte])
}

// localObject is the items of an object-valued local (locals { name = { ... } }) by key.
func localObject(t *testing.T, files map[string]file, dir, name string) map[string]hclsyntax.Expression {
	t.Helper()
	for _, b := range blocks(files, dir, "locals") {
		attr, ok := b.Body.Attributes[name]
		if !ok {
			continue
		}
		obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
		if !ok {
			t.Fatalf("local.%s is not an object literal", name)
		}
		items := map[string]hclsyntax.Expression{}
		for _, item := range obj.Items {
			key := hcl.ExprAsKeyword(item.KeyExpr)
			if key == "" {
				v, diags := item.KeyExpr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("local.%s: a key is not a literal", name)
				}
				key = v.AsString()
			}
			items[key] = item.ValueExpr
		}
		return items
	}
	t.Fatalf("%s: no local %q", dir, name)
	return nil
}

// field is an object literal's attribute.
func field(t *testing.T, obj hclsyntax.Expression, name string) hclsyntax.Expression {
	t.Helper()
	cons, ok := obj.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("not an object literal: %T", obj)
	}
	for _, item := range cons.Items {
		if hcl.ExprAsKeyword(item.KeyExpr) == name {
			return item.ValueExpr
		}
	}
	t.Fatalf("object has no %q", name)
	return nil
}

func functionDirs(t *testing.T) []string {
	t.Helper()
	names, err := topology.FunctionDirs("..")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEveryFileParsesAndIsFormatted(t *testing.T) {
	for path, f := range parseAll(t) {
		// tofu fmt's layout (make lint runs `tofu fmt -check` where tofu is built).
		if formatted := hclwrite.Format(f.src); string(formatted) != string(f.src) {
			t.Errorf("%s is not formatted: run `tofu fmt -recursive terraform`", path)
		}
	}
}

func TestEveryFunctionHasItsModuleInstance(t *testing.T) {
	files := parseAll(t)
	functions := localObject(t, files, ".", "functions")
	if got, want := keys(functions), functionDirs(t); !equal(got, want) {
		t.Errorf("local.functions = %v, want one entry per directory under functions/: %v", got, want)
	}

	module := one(t, files, ".", "module", "function")
	forEach, ok := module.Body.Attributes["for_each"]
	if !ok || source(files, forEach.Expr) != "local.functions" {
		t.Errorf(`module "function" must be instantiated with for_each = local.functions`)
	}
	if src, ok := module.Body.Attributes["source"]; !ok || source(files, src.Expr) != `"./modules/function"` {
		t.Errorf(`module "function" must use ./modules/function`)
	}

	// The event wiring: every function the topology pushes to is in the map.
	topo, err := topology.Load()
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range topo.Functions {
		if _, ok := functions[name]; !ok {
			t.Errorf("topology function %s has no entry in local.functions", name)
		}
		if f.Topic == "" && f.Trigger != "http" {
			t.Errorf("topology function %s has neither a topic nor an http trigger", name)
		}
	}
	if topic, ok := module.Body.Attributes["topic"]; !ok || !strings.Contains(source(files, topic.Expr), "local.topology.functions[each.key].topic") {
		t.Error(`module "function" must take its topic from the topology`)
	}
}

func TestOnlyTheWebhookIsPublic(t *testing.T) {
	files := parseAll(t)
	for name, f := range localObject(t, files, ".", "functions") {
		v, diags := field(t, f, "public").Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: public must be a literal true or false", name)
		}
		if public := v.True(); public != (name == "checkout-webhook") {
			t.Errorf("%s: public = %v; only checkout-webhook may be reachable without authentication", name, public)
		}
	}

	// allUsers / allAuthenticatedUsers may be granted in one place only: the
	// module's "public" member, which exists only when var.public is true.
	everyone := regexp.MustCompile(`"all(Authenticated)?Users"`)
	for path, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" {
				continue
			}
			for name, attr := range b.Body.Attributes {
				if name == "invoker_iam_disabled" {
					t.Errorf("%s: %s.%s disables invoker IAM", path, b.Labels[0], b.Labels[1])
				}
				if name != "member" && name != "members" || !everyone.MatchString(source(files, attr.Expr)) {
					continue
				}
				count, ok := b.Body.Attributes["count"]
				if path != "modules/function/main.tf" || b.Labels[1] != "public" || !ok || source(files, count.Expr) != "var.public ? 1 : 0" {
					t.Errorf("%s: %s.%s grants %s", path, b.Labels[0], b.Labels[1], source(files, attr.Expr))
				}
			}
		}
	}
}

func TestEveryPushHasRetryPolicyDeadLetterAndOIDC(t *testing.T) {
	files := parseAll(t)
	push := one(t, files, "modules/function", "resource", "google_pubsub_subscription", "push")
	retry := child(push, "retry_policy")
	if retry == nil || retry.Body.Attributes["minimum_backoff"] == nil || retry.Body.Attributes["maximum_backoff"] == nil {
		t.Error("the push subscription has no retry_policy with both backoffs")
	}
	dl := child(push, "dead_letter_policy")
	if dl == nil || dl.Body.Attributes["dead_letter_topic"] == nil || dl.Body.Attributes["max_delivery_attempts"] == nil {
		t.Error("the push subscription has no dead_letter_policy")
	} else if !strings.Contains(source(files, dl.Body.Attributes["dead_letter_topic"].Expr), "google_pubsub_topic.dead_letter") {
		t.Error("the dead-letter policy does not point at the function's own dead-letter topic")
	}
	cfg := child(push, "push_config")
	if cfg == nil || child(cfg, "oidc_token") == nil {
		t.Fatal("push is not OIDC-authenticated")
	}
	oidc := child(cfg, "oidc_token")
	if !strings.Contains(source(files, oidc.Body.Attributes["service_account_email"].Expr), "google_service_account.invoker") {
		t.Error("push must authenticate as the separate invoker identity")
	}
	// Every push anywhere (the Knative bridge too) retries, dead-letters and authenticates.
	pushes := 0
	for path, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" || b.Labels[0] != "google_pubsub_subscription" || child(b, "push_config") == nil {
				continue
			}
			pushes++
			if child(b, "retry_policy") == nil || child(b, "dead_letter_policy") == nil || child(child(b, "push_config"), "oidc_token") == nil {
				t.Errorf("%s: push subscription %s lacks a retry policy, a dead-letter policy or OIDC", path, b.Labels[1])
			}
		}
	}
	if pushes < 2 {
		t.Errorf("%d push subscriptions found, want the function's and the Knative bridge's", pushes)
	}
	one(t, files, "modules/function", "resource", "google_pubsub_topic", "dead_letter")
	one(t, files, "modules/function", "resource", "google_service_account", "invoker")
	one(t, files, "modules/function", "resource", "google_service_account", "function")

	topo, err := topology.Load()
	if err != nil {
		t.Fatal(err)
	}
	if d := topo.Delivery; d.MaxDeliveryAttempts < 5 || d.MinimumBackoff <= 0 || d.MaximumBackoff < d.MinimumBackoff {
		t.Errorf("topology delivery policy %+v: want at least 5 attempts and a backoff", d)
	}
}

func TestNoPrimitiveRoles(t *testing.T) {
	primitive := regexp.MustCompile(`roles/(owner|editor|viewer)\b`)
	for path, f := range parseAll(t) {
		if m := primitive.Find(f.src); m != nil {
			t.Errorf("%s grants the primitive role %s", path, m)
		}
	}
	// A function's identity holds only what it needs at project level; its
	// Firestore role is a binding of its own, conditioned on its database
	// (TestEachFunctionReachesOnlyItsFirestoreDatabase).
	files := parseAll(t)
	b := one(t, files, "modules/function", "resource", "google_project_iam_member", "function")
	allowed := `toset(["roles/cloudtrace.agent", "roles/monitoring.metricWriter"])`
	if got := source(files, b.Body.Attributes["for_each"].Expr); got != allowed {
		t.Errorf("function project roles = %s, want %s", got, allowed)
	}
}

// The webhook's database. Firestore IAM cannot restrict a role to
// collections, only to databases: the public webhook's raw events live in a
// database of their own, the only one its identity may reach.
const webhookDatabase = "webhooks"

// firestoreCondition is the condition Firestore documents for access to one
// database (manage-databases: "Configure per-database access permissions").
var firestoreCondition = regexp.MustCompile(`^resource\.name == "projects/test-project/databases/([^"]+)"$`)

// functionDatabase is the database module "function" is given for name:
// its database attribute evaluated for that entry of local.functions, or the
// variable's default when the call does not set it.
func functionDatabase(t *testing.T, files map[string]file, name string, entry hclsyntax.Expression) string {
	t.Helper()
	call := one(t, files, ".", "module", "function")
	attr, ok := call.Body.Attributes["database"]
	if !ok {
		def := one(t, files, "modules/function", "variable", "database").Body.Attributes["default"]
		if def == nil {
			t.Fatal(`module "function": no database set and variable "database" has no default`)
		}
		v, diags := def.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Fatal(`variable "database": the default is not a literal string`)
		}
		return v.AsString()
	}
	// each.value holds the entry's database when it sets one, as a literal.
	value := map[string]cty.Value{}
	for _, item := range entry.(*hclsyntax.ObjectConsExpr).Items {
		if hcl.ExprAsKeyword(item.KeyExpr) != "database" {
			continue
		}
		v, diags := item.ValueExpr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Fatalf("local.functions.%s.database must be a literal string", name)
		}
		value["database"] = v
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{
			"key": cty.StringVal(name), "value": cty.ObjectVal(value),
		})},
		Functions: map[string]function.Function{"try": tryfunc.TryFunc},
	}
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() || v.Type() != cty.String {
		t.Fatalf("%s: module \"function\" database = %s does not evaluate to a string: %s", name, source(files, attr.Expr), diags.Error())
	}
	return v.AsString()
}

func TestEachFunctionReachesOnlyItsFirestoreDatabase(t *testing.T) {
	files := parseAll(t)

	// Firestore roles are granted in one place: the module's conditioned
	// binding, one per function (no for_each, no count).
	var grants []*hclsyntax.Block
	for path, f := range files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" {
				continue
			}
			for _, name := range []string{"role", "roles", "for_each"} {
				if attr, ok := b.Body.Attributes[name]; ok && strings.Contains(source(files, attr.Expr), "roles/datastore.") {
					if path != "modules/function/main.tf" || b.Labels[0] != "google_project_iam_member" || b.Labels[1] != "firestore" {
						t.Errorf("%s: %s.%s grants a Firestore role outside the module's conditioned binding", path, b.Labels[0], b.Labels[1])
					}
					grants = append(grants, b)
				}
			}
		}
	}
	if len(grants) != 1 {
		t.Fatalf("%d Firestore role grants, want the one in modules/function", len(grants))
	}
	grant := grants[0]
	if role, _ := grant.Body.Attributes["role"].Expr.Value(nil); role.IsNull() || role.AsString() != "roles/datastore.user" {
		t.Errorf("the function's Firestore role = %s, want roles/datastore.user", source(files, grant.Body.Attributes["role"].Expr))
	}
	if grant.Body.Attributes["for_each"] != nil || grant.Body.Attributes["count"] != nil {
		t.Error("the Firestore binding must be one per function: no for_each or count")
	}
	var condition *hclsyntax.Block
	for _, c := range grant.Body.Blocks {
		if c.Type == "condition" {
			if condition != nil {
				t.Error("the Firestore binding has more than one condition block")
			}
			condition = c
		}
	}
	if condition == nil || condition.Body.Attributes["expression"] == nil {
		t.Fatal("the function's roles/datastore.user has no IAM condition: every function could read and write every database")
	}
	expression := condition.Body.Attributes["expression"].Expr

	// Per function: the database it is given, the one condition that
	// binding then carries, and the FIRESTORE_DATABASE it reads.
	env := firestoreDatabaseEnv(t, files)
	for name, entry := range localObject(t, files, ".", "functions") {
		db := functionDatabase(t, files, name, entry)
		ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{
			"project": cty.StringVal("test-project"), "database": cty.StringVal(db), "name": cty.StringVal(name),
		})}}
		v, diags := expression.Value(ctx)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Fatalf("the condition %s does not evaluate to a string: %s", source(files, expression), diags.Error())
		}
		// Exactly one database: one equality on one database's name, no
		// ||, no prefix match, no other attribute.
		m := firestoreCondition.FindStringSubmatch(v.AsString())
		if m == nil || strings.ContainsAny(m[1], "/*|&!") {
			t.Errorf("%s: Firestore condition %q, want resource.name == \"projects/<project>/databases/<one database>\"", name, v.AsString())
			continue
		}
		if m[1] != db {
			t.Errorf("%s: Firestore condition is on database %s, but the function uses %s", name, m[1], db)
		}
		want := "(default)"
		if name == "checkout-webhook" {
			want = webhookDatabase
		}
		if db != want {
			t.Errorf("%s: Firestore database %s, want %s (only the public webhook has one of its own, and no other function may reach it)", name, db, want)
		}
		if got := env(db); got != db {
			t.Errorf("%s: FIRESTORE_DATABASE = %s, but its IAM condition allows only %s", name, got, db)
		}
		if e, ok := entry.(*hclsyntax.ObjectConsExpr); ok {
			for _, item := range e.Items {
				if hcl.ExprAsKeyword(item.KeyExpr) == "env" && strings.Contains(source(files, item.ValueExpr), "FIRESTORE_DATABASE") {
					t.Errorf("%s sets FIRESTORE_DATABASE in env: set database, which the module passes on", name)
				}
			}
		}
	}

	// The webhook's database exists, and deleting it takes two steps.
	var found bool
	for _, b := range blocks(files, "modules/platform", "resource", "google_firestore_database") {
		v, diags := b.Body.Attributes["name"].Expr.Value(nil)
		if diags.HasErrors() || v.AsString() != webhookDatabase {
			continue
		}
		found = true
		if p, ok := b.Body.Attributes["delete_protection_state"]; !ok || source(files, p.Expr) != `"DELETE_PROTECTION_ENABLED"` {
			t.Errorf("Firestore database %s has no delete protection", webhookDatabase)
		}
	}
	if !found {
		t.Errorf("modules/platform creates no Firestore database %s", webhookDatabase)
	}
}

// firestoreDatabaseEnv returns what the module sets FIRESTORE_DATABASE to,
// given its var.database: it must be var.database itself, in the last
// argument of local.env's merge, so that var.env cannot override it.
func firestoreDatabaseEnv(t *testing.T, files map[string]file) func(database string) string {
	t.Helper()
	var env hclsyntax.Expression
	for _, b := range blocks(files, "modules/function", "locals") {
		if attr, ok := b.Body.Attributes["env"]; ok {
			env = attr.Expr
		}
	}
	call, ok := env.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "merge" || len(call.Args) == 0 {
		t.Fatal("modules/function: local.env must be merge(var.env, { ... })")
	}
	last, ok := call.Args[len(call.Args)-1].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("modules/function: local.env's last merge argument must be an object literal")
	}
	for _, item := range last.Items {
		if hcl.ExprAsKeyword(item.KeyExpr) != "FIRESTORE_DATABASE" {
			continue
		}
		value := item.ValueExpr
		return func(database string) string {
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"database": cty.StringVal(database)})}}
			v, diags := value.Value(ctx)
			if diags.HasErrors() || v.Type() != cty.String {
				return source(files, value)
			}
			return v.AsString()
		}
	}
	t.Fatal("modules/function: local.env does not set FIRESTORE_DATABASE last")
	return nil
}

func TestPlatformHasTheDatabaseSchedulesAndSecrets(t *testing.T) {
	files := parseAll(t)
	ttl := localObject(t, files, "modules/platform", "ttl_fields")
	if v, _ := ttl["processed"].Value(nil); v.IsNull() || v.AsString() != "expire_at" {
		t.Error("no TTL policy on processed.expire_at")
	}
	// The review and seat-usage queries run on automatic single-field
	// indexes: the only field overrides are the TTL ones, and none of them
	// is a field those queries use.
	if n := len(blocks(files, "modules/platform", "resource", "google_firestore_field")); n != 1 {
		t.Errorf("%d google_firestore_field resources, want only the TTL one", n)
	}
	for collection, field := range ttl {
		v, _ := field.Value(nil)
		if f := v.AsString(); f == "next_review_at" || f == "order.namespace_id" || f == "order.instance_id" {
			t.Errorf("TTL on %s.%s would drop the index renewal or seat-usage queries", collection, f)
		}
	}

	schedules := localObject(t, files, ".", "schedules")
	for _, name := range []string{"renewal-tick", "notices-sweep"} {
		if _, ok := schedules[name]; !ok {
			t.Errorf("no Scheduler job %s", name)
		}
	}
	one(t, files, "modules/platform", "resource", "google_cloud_scheduler_job", "tick")
	one(t, files, "modules/platform", "resource", "google_secret_manager_secret", "this")
}

func TestAlertsAndSLOLinkToTheRunbook(t *testing.T) {
	files := parseAll(t)
	slo := one(t, files, "modules/platform", "resource", "google_monitoring_slo", "webhook_availability")
	if slo.Body.Attributes["goal"] == nil || source(files, slo.Body.Attributes["goal"].Expr) != "var.webhook_slo_goal" {
		t.Error("the webhook SLO's goal must be var.webhook_slo_goal")
	}
	goal := one(t, files, ".", "variable", "webhook_slo_goal")
	if v, _ := goal.Body.Attributes["default"].Expr.Value(nil); v.AsBigFloat().String() != "0.9995" {
		t.Errorf("webhook SLO goal default = %s, want 0.9995", v.AsBigFloat())
	}
	burn := localObject(t, files, "modules/platform", "burn_rate_alerts")
	if len(burn) < 2 {
		t.Errorf("%d burn-rate alerts, want a fast and a slow one", len(burn))
	}
	for name, w := range burn {
		if source(files, field(t, w, "long")) == source(files, field(t, w, "short")) {
			t.Errorf("burn-rate alert %s: one window, want a long and a short one", name)
		}
	}

	runbook, err := os.ReadFile(filepath.Join("..", "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{2,3} (.+)$`).FindAllStringSubmatch(string(runbook), -1) {
		sections[slug(m[1])] = true
	}

	anchor := regexp.MustCompile(`runbook_url\}#([a-z0-9-]+|\$\{each\.key\})`)
	linked := map[string]bool{}
	for _, policy := range blocks(files, "modules/platform", "resource", "google_monitoring_alert_policy") {
		doc := child(policy, "documentation")
		if doc == nil || doc.Body.Attributes["content"] == nil {
			t.Errorf("alert policy %s has no documentation", policy.Labels[1])
			continue
		}
		m := anchor.FindStringSubmatch(source(files, doc.Body.Attributes["content"].Expr))
		if m == nil {
			t.Errorf("alert policy %s does not link to a runbook section", policy.Labels[1])
			continue
		}
		names := []string{m[1]}
		if m[1] == "${each.key}" {
			names = keys(localObject(t, files, "modules/platform", strings.TrimPrefix(source(files, policy.Body.Attributes["for_each"].Expr), "local.")))
		}
		for _, n := range names {
			linked[n] = true
			if !sections[n] {
				t.Errorf("alert policy %s links to #%s, which docs/runbook.md has no section for", policy.Labels[1], n)
			}
		}
	}
	for _, want := range []string{"webhook-error-budget-burn", "dead-letter-backlog", "failed-renewals", "payment-failures-over-threshold", "provisioning-failures"} {
		if !linked[want] {
			t.Errorf("no alert for %s", want)
		}
	}
}

func TestEnvironmentsOnlySetVariables(t *testing.T) {
	files := parseAll(t)
	declared := map[string]bool{}
	for _, v := range blocks(files, ".", "variable") {
		declared[v.Labels[0]] = true
	}
	envs := 0
	for path, f := range files {
		if filepath.Dir(path) != "environments" {
			continue
		}
		if strings.HasSuffix(path, ".tf") || len(f.body.Blocks) > 0 {
			t.Errorf("%s: environments only set variables", path)
		}
		if !strings.HasSuffix(path, ".tfvars") {
			continue
		}
		envs++
		for name := range f.body.Attributes {
			if !declared[name] {
				t.Errorf("%s sets %s, which variables.tf does not declare", path, name)
			}
		}
	}
	if envs < 2 {
		t.Errorf("%d environments, want staging and production", envs)
	}
}

// slug is a heading's anchor as GitHub and GitLab render it.
func slug(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = regexp.MustCompile(`[^a-z0-9 -]`).ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

// A check `tofu validate` would make, without providers: every var.X and
// local.X a module refers to is declared in it, and every module call sets
// only variables the module declares, and all it requires.
func TestReferencesAndModuleCallsResolve(t *testing.T) {
	files := parseAll(t)
	dirs := map[string]bool{}
	for path := range files {
		if strings.HasSuffix(path, ".tf") {
			dirs[filepath.Dir(path)] = true
		}
	}
	for dir := range dirs {
		declared := map[string]map[string]bool{"var": {}, "local": {}, "module": {}}
		for path, f := range files {
			if filepath.Dir(path) != dir || !strings.HasSuffix(path, ".tf") {
				continue
			}
			for _, b := range f.body.Blocks {
				switch b.Type {
				case "variable", "module":
					declared[map[string]string{"variable": "var", "module": "module"}[b.Type]][b.Labels[0]] = true
				case "locals":
					for name := range b.Body.Attributes {
						declared["local"][name] = true
					}
				}
			}
		}
		for path, f := range files {
			if filepath.Dir(path) != dir || !strings.HasSuffix(path, ".tf") {
				continue
			}
			hclsyntax.VisitAll(f.body, func(n hclsyntax.Node) hcl.Diagnostics {
				expr, ok := n.(hclsyntax.Expression)
				if !ok {
					return nil
				}
				for _, tr := range expr.Variables() {
					root := tr.RootName()
					if names, known := declared[root]; known && len(tr) > 1 {
						if attr, ok := tr[1].(hcl.TraverseAttr); ok && !names[attr.Name] {
							t.Errorf("%s:%d: %s.%s is not declared in %s", path, tr.SourceRange().Start.Line, root, attr.Name, dir)
						}
					}
				}
				return nil
			})
		}
	}

	for _, call := range blocks(files, ".", "module") {
		src, _ := call.Body.Attributes["source"].Expr.Value(nil)
		dir := filepath.Clean(src.AsString())
		vars := map[string]bool{}
		for _, v := range blocks(files, dir, "variable") {
			vars[v.Labels[0]] = v.Body.Attributes["default"] == nil
		}
		for name := range call.Body.Attributes {
			if _, ok := vars[name]; !ok && name != "source" && name != "for_each" && name != "count" && name != "depends_on" && name != "providers" {
				t.Errorf("module %s sets %s, which %s does not declare", call.Labels[0], name, dir)
			}
		}
		for name, required := range vars {
			if _, set := call.Body.Attributes[name]; required && !set {
				t.Errorf("module %s does not set %s, which %s requires", call.Labels[0], name, dir)
			}
		}
	}
}

// checkout-webhook refuses events of the other Stripe mode than
// STRIPE_LIVEMODE; production must take live events, no other environment may.
func TestOnlyProductionTakesLiveStripeEvents(t *testing.T) {
	files := parseAll(t)
	hook := localObject(t, files, ".", "functions")["checkout-webhook"]
	if got := source(files, field(t, field(t, hook, "env"), "STRIPE_LIVEMODE")); got != "var.stripe_livemode" {
		t.Errorf("checkout-webhook's STRIPE_LIVEMODE = %s, want var.stripe_livemode", got)
	}
	for path, f := range files {
		if filepath.Dir(path) != "environments" || !strings.HasSuffix(path, ".tfvars") {
			continue
		}
		want := "test"
		if filepath.Base(path) == "production.tfvars" {
			want = "live"
		}
		attr, ok := f.body.Attributes["stripe_livemode"]
		if !ok {
			t.Errorf("%s does not set stripe_livemode", path)
			continue
		}
		if v, diags := attr.Expr.Value(nil); diags.HasErrors() || v.AsString() != want {
			t.Errorf("%s: stripe_livemode = %s, want %q", path, source(files, attr.Expr), want)
		}
	}
}

// licensing's per-address limits key on the caller, not on Cloud Run's front
// end: without TRUST_FORWARDED_FOR every GitLab instance would share one
// bucket, and one caller could block every activation.
func TestLicensingKeysItsLimitsOnTheCaller(t *testing.T) {
	files := parseAll(t)
	env := field(t, localObject(t, files, ".", "functions")["licensing"], "env")
	if got := source(files, field(t, env, "TRUST_FORWARDED_FOR")); got != `"true"` {
		t.Errorf("licensing's TRUST_FORWARDED_FOR = %s, want \"true\"", got)
	}
	if got := source(files, field(t, env, "TRUSTED_PROXY_HOPS")); got != "tostring(var.licensing_trusted_proxy_hops)" {
		t.Errorf("licensing's TRUSTED_PROXY_HOPS = %s, want it from var.licensing_trusted_proxy_hops", got)
	}
}

// A log-based metric counts lines by their message: one the functions no
// longer write (a reworded log call) would leave its alert silent.
func TestLogMetricsCountLinesTheFunctionsWrite(t *testing.T) {
	files := parseAll(t)
	var code strings.Builder
	for _, dir := range []string{"../functions", "../shared"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			code.Write(src)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	message := regexp.MustCompile(`jsonPayload\.message=\\"([^"\\]+)\\"`)
	checked := 0
	for name, m := range localObject(t, files, "modules/platform", "log_metrics") {
		for _, msg := range message.FindAllStringSubmatch(source(files, field(t, m, "filter")), -1) {
			checked++
			if !strings.Contains(code.String(), `"`+msg[1]+`"`) {
				t.Errorf("log metric %s counts lines with message %q, which no function logs", name, msg[1])
			}
		}
	}
	if checked < 2 {
		t.Errorf("%d log metrics by message checked, want the payment failures' and the dead letters'", checked)
	}
}
