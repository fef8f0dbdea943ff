package outbox_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ficus-gw/ficus/newsvc/outbox"
)

var orderTypes = []string{"order.created", "order.paid", "order.shipped", "order.cancelled"}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestLoadSubscriptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(path, []byte(`
subscriptions:
  - name: billing
    url: https://billing.example/hooks/ficus
    types: [order.created, order.cancelled]
    schemaVersion: 2
    secretEnv: BILLING_SECRET
  - name: audit
    url: http://127.0.0.1:9999/all
    secretEnv: AUDIT_SECRET
`), 0o600); err != nil {
		t.Fatal(err)
	}
	subs, err := outbox.LoadSubscriptions(path, env(map[string]string{"BILLING_SECRET": "s3cr3t",
		"AUDIT_SECRET": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}), orderTypes, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[0].Name != "billing" || subs[0].SchemaVersion != 2 || string(subs[0].Key) != "s3cr3t" ||
		len(subs[0].Types) != 2 || subs[1].SchemaVersion != 0 || string(subs[1].Key) != "0123456789abcdef0123456789abcdef" || subs[1].Types != nil {
		t.Fatalf("loaded %+v", subs)
	}
	if err := outbox.ValidateSubscribers(subs); err != nil {
		t.Fatalf("loaded subscribers do not validate: %v", err)
	}
	if subs, err := outbox.LoadSubscriptions("", nil, orderTypes, 2); subs != nil || err != nil {
		t.Fatalf("no file: %v, %v", subs, err)
	}
	if _, err := outbox.LoadSubscriptions(filepath.Join(t.TempDir(), "missing.yaml"), nil, orderTypes, 2); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// Every bad field is named in one error, so an operator fixes them all at once.
func TestParseSubscriptionsNamesEveryBadField(t *testing.T) {
	_, err := outbox.ParseSubscriptions([]byte(`
subscriptions:
  - name: "bad name!"
    url: ftp://billing.example/hook
    types: [order.created, order.refunded]
    schemaVersion: 3
    secretEnv: UNSET_SECRET
  - name: ok
    url: https://x.example/
    secretEnv: "lower-case-not-allowed!"
  - name: ok
    url: https://x.example/
    schemaVersion: -1
  - name: c
    url: https://x.example/
    secretEnv: BROKEN
`), env(map[string]string{"BROKEN": "whsec_???"}), orderTypes, 2)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`subscriptions[0].name: "bad name!"`,
		`subscriptions[0].url: "ftp://billing.example/hook"`,
		`subscriptions[0].types[1]: "order.refunded" is not an event type of this service`,
		`subscriptions[0].schemaVersion: 3 is not from 1 to 2`,
		`subscriptions[0].secretEnv: environment variable UNSET_SECRET is not set`,
		`subscriptions[1].secretEnv: "lower-case-not-allowed!" is not an environment variable name`,
		`subscriptions[2].name: "ok" is used twice`,
		`subscriptions[2].schemaVersion: -1`,
		`subscriptions[2].secretEnv: required`,
		`subscriptions[3].secretEnv: BROKEN: webhook secret starts with whsec_`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	for _, tc := range []struct{ yaml, want string }{
		{"subscriptions:\n  - name: a\n    url: https://x.example/\n    secretEnv: S\n    secret: inline\n", "field secret not found"},
		{"subscriptions: []\n", "none listed"},
		{"", "none listed"},
		{"subscriptions: [", "yaml"},
	} {
		if _, err := outbox.ParseSubscriptions([]byte(tc.yaml), env(map[string]string{"S": "x"}), orderTypes, 2); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.yaml, err, tc.want)
		}
	}
}
