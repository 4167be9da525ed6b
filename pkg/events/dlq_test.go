package events

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestDeadLetterMsgHeaders(t *testing.T) {
	first := time.Date(2025, 8, 18, 6, 53, 20, 0, time.FixedZone("CEST", 2*3600))
	last := first.Add(90 * time.Minute)
	body := []byte(`{"workflowId":"welcome-email"}`)
	d := DeadLetter{
		Stage:          StageSink,
		Suffix:         "welcome-email",
		Reason:         "novu 422: workflow_not_found",
		Deliveries:     5,
		SourceSubject:  "novu.trigger.welcome-email",
		SourceSequence: 42,
		HTTPStatus:     422,
		Response:       []byte(`{"statusCode":422,"message":"workflow_not_found"}`),
		FirstFailure:   first,
		LastFailure:    last,
	}
	src := nats.Header{jetstream.MsgIDHeader: {"txn_0123"}, TransactionIDHeader: {"txn_0123"}, "traceparent": {parentSampled}}
	msg := d.Msg(body, src)

	if msg.Subject != "dlq.sink.welcome-email" {
		t.Errorf("subject %q", msg.Subject)
	}
	if !bytes.Equal(msg.Data, body) {
		t.Errorf("data %q, want the source body unchanged", msg.Data)
	}
	want := map[string]string{
		DLQStageHeader:          StageSink,
		DLQReasonHeader:         "novu 422: workflow_not_found",
		DLQDeliveriesHeader:     "5",
		DLQSourceSubjectHeader:  "novu.trigger.welcome-email",
		DLQSourceSequenceHeader: "42",
		DLQHTTPStatusHeader:     "422",
		DLQResponseHeader:       `{"statusCode":422,"message":"workflow_not_found"}`,
		DLQFirstFailureHeader:   "2025-08-18T04:53:20Z",
		DLQLastFailureHeader:    "2025-08-18T06:23:20Z",
		jetstream.MsgIDHeader:   "dlq.sink.txn_0123",
		TransactionIDHeader:     "txn_0123",
		"traceparent":           parentSampled,
	}
	for k, v := range want {
		if got := msg.Header[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(msg.Header) != len(want) {
		t.Errorf("header has %d keys, want %d: %v", len(msg.Header), len(want), msg.Header)
	}
}

func TestDeadLetterMsgOptionalHeadersOmitted(t *testing.T) {
	msg := DeadLetter{Stage: StageRouter, Suffix: "user.created", Reason: "no route"}.Msg([]byte(`{}`), nil)
	if msg.Subject != "dlq.router.user.created" {
		t.Errorf("subject %q", msg.Subject)
	}
	for _, k := range []string{DLQDeliveriesHeader, DLQSourceSubjectHeader, DLQSourceSequenceHeader, DLQHTTPStatusHeader,
		DLQResponseHeader, DLQFirstFailureHeader, DLQLastFailureHeader, jetstream.MsgIDHeader} {
		if v, ok := msg.Header[k]; ok {
			t.Errorf("header %s = %q, want it absent", k, v)
		}
	}
	if msg.Header.Get(DLQStageHeader) != StageRouter || msg.Header.Get(DLQReasonHeader) != "no route" {
		t.Errorf("header %v", msg.Header)
	}
}

func TestDeadLetterMsgID(t *testing.T) {
	tests := []struct {
		name string
		d    DeadLetter
		src  nats.Header
		want string // "" means no Nats-Msg-Id
	}{
		{
			name: "from the source id",
			d:    DeadLetter{Stage: StageRouter, Suffix: "user.created", SourceSubject: "clerk.user.created", SourceSequence: 7},
			src:  nats.Header{jetstream.MsgIDHeader: {"msg_31Rw443GHnAnQGYn9xZeAhWJRbt"}},
			want: "dlq.router.msg_31Rw443GHnAnQGYn9xZeAhWJRbt",
		},
		{
			name: "from subject and sequence",
			d:    DeadLetter{Stage: StageSink, Suffix: "welcome", SourceSubject: "novu.trigger.welcome", SourceSequence: 42},
			src:  nats.Header{SvixIDHeader: {"msg_1"}},
			want: "dlq.sink.novu.trigger.welcome.42",
		},
		{
			name: "nothing to derive from",
			d:    DeadLetter{Stage: StageSink, Suffix: "welcome"},
			src:  nats.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.d.Msg(nil, tt.src)
			b := tt.d.Msg(nil, tt.src)
			got := a.Header.Get(jetstream.MsgIDHeader)
			if got != tt.want {
				t.Errorf("Nats-Msg-Id %q, want %q", got, tt.want)
			}
			if b.Header.Get(jetstream.MsgIDHeader) != got {
				t.Error("Nats-Msg-Id is not deterministic")
			}
			if n := len(a.Header[jetstream.MsgIDHeader]); n > 1 {
				t.Errorf("%d Nats-Msg-Id values", n)
			}
		})
	}
}

func TestDeadLetterMsgCopiesSourceHeaders(t *testing.T) {
	src := nats.Header{SvixIDHeader: {"msg_1"}, "X-Multi": {"a", "b"}}
	msg := DeadLetter{Stage: StageRouter, Suffix: "user.created", Reason: "r"}.Msg(nil, src)

	src["X-Multi"][0] = "changed"
	src.Set(SvixIDHeader, "msg_2")
	src.Set("X-New", "new")
	if got := msg.Header["X-Multi"]; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("X-Multi = %q: the DLQ header aliases the source's slice", got)
	}
	if got := msg.Header.Get(SvixIDHeader); got != "msg_1" {
		t.Errorf("Svix-Id = %q after the source changed", got)
	}
	if _, ok := msg.Header["X-New"]; ok {
		t.Error("the DLQ header is the source map")
	}
	msg.Header["X-Multi"][1] = "mine"
	if src["X-Multi"][1] != "b" {
		t.Error("changing the DLQ header changed the source")
	}
	if _, ok := src[DLQReasonHeader]; ok {
		t.Error("Msg wrote DLQ headers into the source header")
	}
}

func TestDeadLetterMsgResponse(t *testing.T) {
	tests := []struct {
		name     string
		response string
		wantLen  int
	}{
		{name: "short kept", response: `{"message":"bad"}`, wantLen: 17},
		{name: "exactly the limit", response: strings.Repeat("a", MaxDLQResponseBytes), wantLen: MaxDLQResponseBytes},
		{name: "ASCII cut at the limit", response: strings.Repeat("a", 600), wantLen: MaxDLQResponseBytes},
		{name: "2-byte rune across the limit", response: strings.Repeat("a", 499) + "é" + "zzz", wantLen: 499},
		{name: "3-byte rune across the limit", response: strings.Repeat("a", 498) + "€" + "zzz", wantLen: 498},
		{name: "4-byte rune across the limit", response: strings.Repeat("a", 497) + "🚀" + "zzz", wantLen: 497},
		{name: "rune ending at the limit", response: strings.Repeat("a", 497) + "€" + "zzz", wantLen: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := DeadLetter{Stage: StageSink, Suffix: "w", Response: []byte(tt.response)}.Msg(nil, nil)
			got := msg.Header.Get(DLQResponseHeader)
			if len(got) != tt.wantLen {
				t.Errorf("response header is %d bytes, want %d", len(got), tt.wantLen)
			}
			if !utf8.ValidString(got) {
				t.Errorf("response header %q is not valid UTF-8", got)
			}
			if !strings.HasPrefix(tt.response, got) {
				t.Error("response header is not a prefix of the response")
			}
		})
	}
}

func TestDeadLetterMsgOneLine(t *testing.T) {
	msg := DeadLetter{
		Stage:    StageSink,
		Suffix:   "w",
		Reason:   "novu 400:\nvalidation failed\r\n",
		Response: []byte("{\n  \"message\": \"bad\"\r\n}\n"),
	}.Msg(nil, nil)
	for _, k := range []string{DLQReasonHeader, DLQResponseHeader} {
		v := msg.Header.Get(k)
		if strings.ContainsAny(v, "\r\n") {
			t.Errorf("%s = %q holds a line break", k, v)
		}
	}
	if got := msg.Header.Get(DLQReasonHeader); got != "novu 400: validation failed  " {
		t.Errorf("reason %q", got)
	}
}

func TestDeadLetterMsgInvalidSuffix(t *testing.T) {
	msg := DeadLetter{Stage: StageRouter, Suffix: "user.*", Reason: "bad type"}.Msg(nil, nil)
	if msg.Subject != "dlq.router.invalid" {
		t.Errorf("subject %q", msg.Subject)
	}
}

// wireSize is what the server counts against max_payload: headers and body.
func wireSize(m *nats.Msg) int64 { return int64(m.Size() - len(m.Subject) - len(m.Reply)) }

func TestDeadLetterMsgFitsMaxPayload(t *testing.T) {
	d := DeadLetter{
		Stage: StageRouter, Suffix: "user.created", Reason: "publish novu.trigger.welcome: nats: maximum payload exceeded",
		Deliveries: 1, SourceStream: StreamClerk, SourceSubject: "clerk.user.created", SourceSequence: 7,
	}
	src := nats.Header{jetstream.MsgIDHeader: {"msg_1"}, SvixIDHeader: {"msg_1"}, EventTypeHeader: {"user.created"},
		"traceparent": {parentSampled}, "X-Custom": {"kept"}}
	big := bytes.Repeat([]byte("é"), 40_000) // 80,000 bytes of two-byte runes
	hugeHeader := nats.Header{jetstream.MsgIDHeader: {"msg_2"}, SvixIDHeader: {"msg_2"}, "X-Huge": {strings.Repeat("h", 70_000)}}

	tests := []struct {
		name          string
		body          []byte
		src           nats.Header
		maxPayload    int64
		wantTruncated string // Dlq-Truncated, "" when the copy is whole
		wantBodyLen   int    // -1: the whole body; -2: a prefix that fills the limit
		wantDropped   string // a source header that must be gone
	}{
		{name: "no limit", body: big, src: src, maxPayload: 0, wantBodyLen: -1},
		{name: "fits", body: []byte(`{"a":1}`), src: src, maxPayload: 1 << 20, wantBodyLen: -1},
		{name: "too big: body cut", body: big, src: src, maxPayload: 64 << 10, wantTruncated: "80000", wantBodyLen: -2},
		{name: "headers alone too big: ids kept, body empty", body: big, src: hugeHeader, maxPayload: 64 << 10,
			wantTruncated: "80000", wantBodyLen: 0, wantDropped: "X-Huge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := d.Msg(tt.body, tt.src, WithMaxPayload(tt.maxPayload))
			if tt.maxPayload > 0 && wireSize(m) > tt.maxPayload-DLQPublishReserve {
				t.Errorf("dead letter is %d bytes, over %d - %d", wireSize(m), tt.maxPayload, DLQPublishReserve)
			}
			if got := m.Header.Get(DLQTruncatedHeader); got != tt.wantTruncated {
				t.Errorf("%s = %q, want %q", DLQTruncatedHeader, got, tt.wantTruncated)
			}
			switch {
			case tt.wantBodyLen == -1 && !bytes.Equal(m.Data, tt.body):
				t.Errorf("body %d bytes, want the whole %d", len(m.Data), len(tt.body))
			case tt.wantBodyLen >= 0 && len(m.Data) != tt.wantBodyLen:
				t.Errorf("body %d bytes, want %d", len(m.Data), tt.wantBodyLen)
			}
			if tt.wantTruncated != "" && tt.wantBodyLen < 0 {
				if len(m.Data) == 0 || !bytes.HasPrefix(tt.body, m.Data) || !utf8.Valid(m.Data) {
					t.Errorf("truncated body (%d bytes) must be a non-empty valid UTF-8 prefix", len(m.Data))
				}
				if room := tt.maxPayload - DLQPublishReserve - wireSize(m); room > 1 {
					t.Errorf("%d bytes left unused: cut more than needed", room)
				}
			}
			if tt.wantDropped != "" && m.Header.Get(tt.wantDropped) != "" {
				t.Errorf("header %s kept, want dropped", tt.wantDropped)
			}
			for _, k := range []string{DLQReasonHeader, DLQSourceStreamHeader, DLQSourceSequenceHeader, DLQSourceSubjectHeader, jetstream.MsgIDHeader, SvixIDHeader} {
				if m.Header.Get(k) == "" {
					t.Errorf("header %s missing", k)
				}
			}
			if tt.wantDropped == "" {
				for k := range tt.src {
					if !strings.HasPrefix(k, "Nats-") && m.Header.Get(k) != tt.src.Get(k) {
						t.Errorf("source header %s = %q, want kept", k, m.Header.Get(k))
					}
				}
			}
		})
	}
}

func TestTruncateUTF8(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		n    int
		want string
	}{
		{name: "short", in: []byte("abc"), n: 5, want: "abc"},
		{name: "ascii cut", in: []byte("abcdef"), n: 3, want: "abc"},
		{name: "backs off a split rune", in: []byte("aé"), n: 2, want: "a"},
		{name: "not UTF-8 at all: cut at n", in: bytes.Repeat([]byte{0x80}, 10), n: 4, want: string(bytes.Repeat([]byte{0x80}, 4))},
		{name: "zero", in: []byte("abc"), n: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(TruncateUTF8(tt.in, tt.n)); got != tt.want {
				t.Errorf("TruncateUTF8(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}
