package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ficus-gw/ficus/contracts/webhook"
)

// subscriptionsFile is the YAML file of `ficus catalog|orders --webhooks`:
//
//	subscriptions:
//	  - name: billing                    # progress key: renaming restarts from the first event
//	    url: https://billing.example/hooks/ficus
//	    types: [order.created, order.cancelled]   # empty or absent: every type
//	    schemaVersion: 2                 # absent: 1
//	    secretEnv: BILLING_WEBHOOK_SECRET  # env var holding the signing secret
type subscriptionsFile struct {
	Subscriptions []subscriptionEntry `yaml:"subscriptions"`
}

type subscriptionEntry struct {
	Name          string   `yaml:"name"`
	URL           string   `yaml:"url"`
	Types         []string `yaml:"types"`
	SchemaVersion int      `yaml:"schemaVersion"`
	SecretEnv     string   `yaml:"secretEnv"`
}

var (
	subscriberName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	envName        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// LoadSubscriptions reads the webhook subscriptions of a service from the
// YAML file at path ("" means none: nil, nil). types are the event types
// the service emits and latest its highest schemaVersion (Latest of its
// upcasters); lookupEnv reads the secrets (os.LookupEnv). Every problem is
// reported at once, each naming its field, e.g.
// "subscriptions[1].url: ..."; unknown fields are errors too, so a
// misspelt key never silently does nothing. Every subscription must name a
// secretEnv whose variable is set: configured deliveries are always signed.
func LoadSubscriptions(path string, lookupEnv func(string) (string, bool), types []string, latest int) ([]Subscriber, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	subs, err := ParseSubscriptions(raw, lookupEnv, types, latest)
	if err != nil {
		return nil, fmt.Errorf("webhooks file %s: %w", path, err)
	}
	return subs, nil
}

// ParseSubscriptions is LoadSubscriptions on the file's content.
func ParseSubscriptions(raw []byte, lookupEnv func(string) (string, bool), types []string, latest int) ([]Subscriber, error) {
	var f subscriptionsFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if len(f.Subscriptions) == 0 {
		return nil, errors.New("subscriptions: none listed (omit --webhooks for none)")
	}
	var errs []error
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("subscriptions[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	seen := map[string]bool{}
	out := make([]Subscriber, 0, len(f.Subscriptions))
	for i, e := range f.Subscriptions {
		switch {
		case !subscriberName.MatchString(e.Name):
			bad(i, "name", "%q must be 1-64 characters of A-Z a-z 0-9 . _ -", e.Name)
		case seen[e.Name]:
			bad(i, "name", "%q is used twice", e.Name)
		}
		seen[e.Name] = true
		if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(i, "url", "%q is not an absolute http(s) URL", e.URL)
		}
		for j, t := range e.Types {
			if !slices.Contains(types, t) {
				bad(i, fmt.Sprintf("types[%d]", j), "%q is not an event type of this service (%s)", t, strings.Join(types, ", "))
			}
		}
		if e.SchemaVersion < 0 || e.SchemaVersion > latest {
			bad(i, "schemaVersion", "%d is not from 1 to %d", e.SchemaVersion, latest)
		}
		var key []byte
		switch secret, ok := lookupEnv(e.SecretEnv); {
		case e.SecretEnv == "":
			bad(i, "secretEnv", "required: the name of the environment variable that holds the signing secret")
		case !envName.MatchString(e.SecretEnv):
			bad(i, "secretEnv", "%q is not an environment variable name", e.SecretEnv)
		case !ok || secret == "":
			bad(i, "secretEnv", "environment variable %s is not set or empty", e.SecretEnv)
		default:
			var err error
			if key, err = webhook.Key(secret); err != nil {
				bad(i, "secretEnv", "%s: %v", e.SecretEnv, err)
			}
		}
		out = append(out, Subscriber{Name: e.Name, URL: e.URL, Types: slices.Clone(e.Types), SchemaVersion: e.SchemaVersion, Key: key})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
