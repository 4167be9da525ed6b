package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/receiver/internal/httpapi"
	"github.com/nats-io/nats.go/jetstream"
)

// FuzzWebhook drives the handler with arbitrary bodies and signature headers
// and a fake publisher. With sign set, the harness signs the body correctly
// (then appends sig as extra entries), which explores the envelope checks;
// otherwise the headers are taken as given. It checks that the handler never
// panics, never answers 2xx to a body without a valid signature, and that a
// 2xx always means exactly the sent bytes were published and acknowledged.
func FuzzWebhook(f *testing.F) {
	valid := []byte(fixtures["user.created"])
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	goodSig := sign(f, testSecret, "msg_seed", fixedNow, valid)
	seeds := []struct {
		body          []byte
		id, ts, sig   string
		sign, webhook bool
		mode          uint8
	}{
		{valid, "msg_seed", ts, goodSig, false, false, 0},                                     // valid as given
		{valid, "msg_seed", ts, goodSig, false, true, 1},                                      // webhook-* names, duplicate
		{valid, "msg_seed", ts, "v1a," + strings.TrimPrefix(goodSig, "v1,"), false, false, 0}, // v1a only
		{valid, "msg_seed", ts, "v1,AAAA " + goodSig, false, false, 2},                        // valid, publish fails
		{valid, "msg_other", ts, goodSig, false, false, 0},                                    // signature of another id
		{append(bytes.Clone(valid), ' '), "msg_seed", ts, goodSig, false, false, 0},           // one byte more
		{valid, "msg_seed", "-1", goodSig, false, false, 0},
		{valid, "msg_seed", "99999999999999999999", goodSig, false, false, 0},
		{valid, "", "", "", false, false, 0},
		{nil, "msg", ts, "v1,", false, false, 0},
		{[]byte(`{"type":"user.created"}`), "msg_s", "", "", true, false, 0},
		{[]byte(`{"type":"a.b.c_d-e"}`), "msg_s", "", "v2,xyz", true, false, 3},
		{[]byte(`{"type":"user.>"}`), "msg_s", "", "", true, false, 0},
		{[]byte(`{"type":["user"]}`), "msg_s", "", "", true, false, 0},
		{[]byte(`[]`), "msg_s", "", "", true, false, 0},
		{[]byte(`{"type":"ok","data":` + strings.Repeat("[", 5000) + `}`), "msg_s", "", "", true, false, 0},
		{[]byte("\xff\xfe{"), "msg_s", "", "", true, true, 4},
		{[]byte(`{"type":"user.created","data":{"n":123456789012345678901234567890}}`), "msg_s", "", "", true, false, 0},
	}
	for _, s := range seeds {
		f.Add(s.body, s.id, s.ts, s.sig, s.sign, s.webhook, s.mode)
	}
	f.Fuzz(func(t *testing.T, body []byte, id, tsHeader, sig string, signIt, webhookNames bool, mode uint8) {
		pub := &fakePublisher{mode: fakeMode(mode % uint8(numFakeModes)), err: jetstream.ErrNoStreamResponse}
		h := newFakeHandler(t, pub, func(o *httpapi.Options) {
			o.MaxBodyBytes = 4096
			o.PublishTimeout = 5 * time.Millisecond // the never-resolving mode must not slow the fuzzer
		})
		if signIt {
			if id == "" {
				id = "msg_fuzz"
			}
			tsHeader = strconv.FormatInt(fixedNow.Unix(), 10)
			sig = sign(t, testSecret, id, fixedNow, body) + " " + sig
		}
		prefix := "Svix-"
		if webhookNames {
			prefix = "Webhook-"
		}
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/clerk", bytes.NewReader(body))
		req.Header[prefix+"Id"] = []string{id}
		req.Header[prefix+"Timestamp"] = []string{tsHeader}
		req.Header[prefix+"Signature"] = []string{sig}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Fatalf("unexpected status %d %q", rec.Code, rec.Body)
		}
		signed := validlySigned(t, id, tsHeader, sig, body)
		published := pub.published()
		if !signed {
			if rec.Code/100 == 2 {
				t.Fatalf("answered %d to a body without a valid signature", rec.Code)
			}
			if len(published) != 0 {
				t.Fatalf("published a body without a valid signature")
			}
			return
		}
		ev, parseErr := events.ParseEvent(body)
		wellFormed := parseErr == nil && len(body) <= 4096
		if rec.Code/100 == 2 {
			if !wellFormed {
				t.Fatalf("answered %d to a malformed envelope", rec.Code)
			}
			if len(published) != 1 || !bytes.Equal(published[0].Data, body) || published[0].Subject != "clerk."+ev.Type ||
				published[0].Header.Get(jetstream.MsgIDHeader) != id {
				t.Fatalf("2xx without exactly the sent bytes published to clerk.%s", ev.Type)
			}
			if pub.mode != ackIt && pub.mode != duplicateIt {
				t.Fatalf("answered %d without a PubAck (mode %d)", rec.Code, pub.mode)
			}
		} else if wellFormed && (pub.mode == ackIt || pub.mode == duplicateIt) {
			t.Fatalf("answered %d %q to a signed, well-formed webhook that was acknowledged", rec.Code, rec.Body)
		}
	})
}

// validlySigned tells, independently of package verify, whether the headers
// carry the right v1 signature of body at a timestamp within 5 minutes of
// fixedNow.
func validlySigned(t *testing.T, id, tsHeader, sigs string, body []byte) bool {
	sec, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil || id == "" || sigs == "" {
		return false
	}
	if d := sec - fixedNow.Unix(); d < -300 || d > 300 {
		return false
	}
	want := sign(t, testSecret, id, time.Unix(sec, 0), body)
	for _, s := range strings.Split(sigs, " ") {
		if s == want {
			return true
		}
		// The svix library ignores anything after a second comma.
		if v, rest, ok := strings.Cut(s, ","); ok && v == "v1" {
			if b64, _, _ := strings.Cut(rest, ","); "v1,"+b64 == want {
				return true
			}
		}
	}
	return false
}
