// Package novufake is an in-process fake of Novu's trigger API for tests,
// benchmarks and the devstack: an [http.Handler] (and an httptest-backed
// [Server]) that follows the contract of POST /v1/events/trigger and
// /v1/events/trigger/bulk closely enough for the sink to be tested against it.
//
// It answers 201 with {"data":{"acknowledged":true,"status":"processed",
// "transactionId":...}} (bulk: {"data":[...]}, one item per event, in order),
// checks "Authorization: ApiKey <key>" (401 otherwise), the JSON content type
// (415), the body (422 for a missing name or to, more than 100 bulk events),
// and records every trigger it receives with the fields the sink must get right.
//
// It also serves the subscriber and topic endpoints a sync sink calls, with
// their contract and a state tests can assert ([Fake.Subscriber],
// [Fake.Topic], [Fake.SyncCalls]): POST /v2/subscribers (upsert, 201
// {"data":{...}}; a field sent as null is cleared, one left out is kept,
// data is replaced, {} when left out), DELETE /v2/subscribers/{id} (200, 404
// for an unknown subscriber; its topic subscriptions go with it), POST and
// DELETE /v2/topics/{key}/subscriptions (1 to 100 ids, else 422; an add
// creates the topic and answers 201 {"data":[...],"meta":{...},"errors":[...]},
// unknown subscribers listed as SUBSCRIBER_NOT_FOUND; a removal from an
// unknown topic is a 404) and DELETE /v2/topics/{key} (200, 404 when
// unknown). A [Hook] sees these calls too, with [Call.Endpoint] set to
// [EndpointUpsertSubscriber]...; a scripted refusal answers instead.
//
// Scripting:
//   - per workflow ([WithWorkflow], [Fake.SetWorkflow]): e.g. workflow
//     "missing" answers [WorkflowNotFound] (a 422, or an "error" item in a bulk
//     call), or a 201 with another status ([Status]);
//   - per call ([WithHook], [Fake.SetHook]): a function that sees each call and
//     may answer instead, e.g. [Unavailable] or [TooManyRequests] with
//     Retry-After and RateLimit-* headers, a slow answer ([Response.Delay]), or
//     a lost answer ([Response.Drop]);
//   - a Novu-like token bucket ([WithRateLimit]): RateLimit-* headers on every
//     answer, 429 with Retry-After when empty; a bulk call costs 100 tokens;
//   - Novu's Idempotency-Key cache ([WithIdempotency]): the first answer to a
//     key, errors included, is replayed with Idempotency-Replay: true.
//
// Every accessor is safe for concurrent use. The handler logs nothing and
// allocates little, so a benchmark can drive thousands of requests a second;
// bound the recorded triggers with [WithMaxRecords] for long runs.
package novufake
