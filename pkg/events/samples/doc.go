// Package samples holds realistic Clerk webhook envelopes for every event type
// Clerk documents, plus named variants for the edge cases a pipeline must
// survive, and signs them the way Svix does. It is the local stand-in for the
// "Send Example" button of Clerk's dashboard: tests, the send tool and the
// benchmark all post these bodies.
//
// Each body is the envelope exactly as Clerk's backend serialises it: compact
// JSON, keys sorted, '<', '>' and '&' escaped as \u003c, \u003e and \u0026,
// other non-ASCII characters raw, ids of the form <prefix>_ plus 27 base62
// characters (KSUIDs whose time part matches the event), timestamps in Unix
// milliseconds, with instance_id and event_attributes.http_request.
//
// A sample is named by its event type ("user.created") or by its type and a
// variant ("email.created/magic_link_sign_in", "user.updated/non-primary-first").
// [All] lists them in a stable order, [Get] finds one by name, [Sign] computes
// the svix-id, svix-timestamp and svix-signature headers for a body, and
// [NewSvixID] makes a fresh message id.
package samples
