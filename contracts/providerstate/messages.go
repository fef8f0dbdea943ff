package providerstate

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ficus-gw/ficus/apierr"
	"github.com/ficus-gw/ficus/newsvc/outbox"
)

// MessagesPath is where MountMessages serves the message endpoint: pass it
// to pact-verifier as --base-path when verifying message pacts.
const MessagesPath = "/_pact/messages"

// Produce returns the JSON of the most recent event of typ that the
// provider really emitted, in schemaVersion version, as a webhook would
// deliver it. found is false when there is none.
type Produce func(ctx context.Context, typ string, version int) (body []byte, found bool, err error)

// ErrNoSuchVersion is returned by a Produce for a version the provider
// does not serve.
var ErrNoSuchVersion = errors.New("the provider does not serve this schemaVersion")

// messageRequest is what pact-verifier posts for a message interaction.
type messageRequest struct {
	Description string `json:"description"`
}

// eventName finds "<aggregate>.<verb>" and an optional " vN" in a message
// description, e.g. "an order.created v2 event for a placed order".
var eventName = regexp.MustCompile(`\b([a-z][a-z-]*\.[a-z][a-z-]*)(?:\s+v([0-9]+))?\b`)

// MountMessages serves POST MessagesPath, the provider side of Pact message
// verification: the verifier posts {"description", "providerStates"} and
// gets the message back as the body. The description must name the event
// type and may name its version ("an order.created v2 event"; default v1).
// The answer is a real event from the provider's outbox, the latest of that
// type, put there by the interaction's provider states (which the verifier
// sets up through --state-change-url, as for HTTP pacts). Like Mount it
// answers loopback clients only (404 otherwise); a description without an
// event type, or an event that was never emitted, is 400.
func MountMessages(app fiber.Router, produce Produce, log *slog.Logger) {
	meta := base64.StdEncoding.EncodeToString([]byte(`{"contentType":"application/json"}`))
	app.Post(MessagesPath, func(c *fiber.Ctx) error {
		if !c.Context().RemoteIP().IsLoopback() {
			return apierr.New(apierr.CodeNotFound, "no such resource")
		}
		var req messageRequest
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return apierr.New(apierr.CodeMalformed, "body must be {\"description\",\"providerStates\"}: %v", err)
		}
		m := eventName.FindStringSubmatch(req.Description)
		if m == nil {
			return apierr.New(apierr.CodeValidation, "message description %q names no event type (<aggregate>.<verb>)", req.Description)
		}
		version := 1
		if m[2] != "" {
			version, _ = strconv.Atoi(m[2])
		}
		body, found, err := produce(c.UserContext(), m[1], version)
		if errors.Is(err, ErrNoSuchVersion) {
			return apierr.New(apierr.CodeValidation, "%s v%d: %v", m[1], version, err)
		}
		if err != nil {
			log.Error("producing a message for pact", "type", m[1], "err", err, "request_id", apierr.RequestID(c))
			return err
		}
		if !found {
			return apierr.New(apierr.CodeValidation, "no %s event was emitted; set up a provider state that causes one", m[1])
		}
		c.Set("Pact-Message-Metadata", meta)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	})
}

// OutboxProducer produces messages from a service's outbox: the latest
// event of the type, upcast to the version asked for with ups, in the form a
// webhook delivers (the envelope without seq).
func OutboxProducer(db *sql.DB, ups []outbox.Upcaster) Produce {
	return func(ctx context.Context, typ string, version int) ([]byte, bool, error) {
		if version < 1 || version > outbox.Latest(ups) {
			return nil, false, ErrNoSuchVersion
		}
		e, found, err := outbox.Last(ctx, db, typ)
		if err != nil || !found {
			return nil, found, err
		}
		env, err := outbox.Convert(ups, e.Envelope, version)
		if err != nil {
			return nil, false, err
		}
		b, err := json.Marshal(env)
		return b, true, err
	}
}
