package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Upcaster turns the data of a stored event of Type at schemaVersion From
// into the data of version From+1. The outbox keeps events as they were
// written; consumers choose the version they read, per pull request
// (?schemaVersion=) or per webhook subscription (Subscriber.SchemaVersion),
// and the feed and the Dispatcher upcast on the way out.
//
// Up must be a pure function of its input, must keep fields it does not
// know (a tolerant writer for tolerant readers), and must produce data that
// validates against the new version's schema (contracts/events).
type Upcaster struct {
	Type string
	From int
	Up   func(data json.RawMessage) (json.RawMessage, error)
	// Deprecated, when set, is when version From of Type became deprecated;
	// Sunset is the earliest date it may stop being served. The pull feed
	// announces both (Deprecation, Sunset headers) to readers that still
	// get version From.
	Deprecated time.Time
	Sunset     time.Time
}

// ErrNoDowncast is returned by Convert for an event stored in a version
// newer than the one asked for: the outbox only upcasts.
var ErrNoDowncast = errors.New("event is stored in a newer schemaVersion than asked for")

// Latest is the highest schemaVersion any type reaches through ups: 1 when
// there are none.
func Latest(ups []Upcaster) int {
	latest := 1
	for _, u := range ups {
		latest = max(latest, u.From+1)
	}
	return latest
}

// Convert returns e in the highest version of its type that is not above
// want, applying ups one version at a time. want < 1 means 1. An event with
// no upcaster from its version is returned as it is.
func Convert(ups []Upcaster, e Envelope, want int) (Envelope, error) {
	want = max(want, 1)
	if e.SchemaVersion > want {
		return e, fmt.Errorf("%w: %s %s is v%d, asked for v%d", ErrNoDowncast, e.Type, e.EventID, e.SchemaVersion, want)
	}
	for e.SchemaVersion < want {
		u, ok := upcaster(ups, e.Type, e.SchemaVersion)
		if !ok {
			break
		}
		data, err := u.Up(e.Data)
		if err != nil {
			return e, fmt.Errorf("upcasting %s %s from v%d: %w", e.Type, e.EventID, e.SchemaVersion, err)
		}
		e.Data, e.SchemaVersion = data, e.SchemaVersion+1
	}
	return e, nil
}

func upcaster(ups []Upcaster, typ string, from int) (Upcaster, bool) {
	for _, u := range ups {
		if u.Type == typ && u.From == from {
			return u, true
		}
	}
	return Upcaster{}, false
}

// deprecation returns the earliest Deprecated and Sunset among the versions
// a reader asking for want still gets (From >= want), zero when none is
// deprecated.
func deprecation(ups []Upcaster, want int) (deprecated, sunset time.Time) {
	for _, u := range ups {
		if u.From < max(want, 1) || u.Deprecated.IsZero() {
			continue
		}
		if deprecated.IsZero() || u.Deprecated.Before(deprecated) {
			deprecated = u.Deprecated
		}
		if !u.Sunset.IsZero() && (sunset.IsZero() || u.Sunset.Before(sunset)) {
			sunset = u.Sunset
		}
	}
	return deprecated, sunset
}
