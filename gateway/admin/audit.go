package admin

import "github.com/ficus-gw/ficus/gateway/controlplane"

// AuditEntry is one recorded change of one field of a route (or, for
// actor "flags-file", of the flag definitions), with typed old and new
// values: a number for percents, a string for pins, an object for
// rollouts and flag files, null for "not set".
type AuditEntry = controlplane.AuditEntry
