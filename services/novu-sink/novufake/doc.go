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
