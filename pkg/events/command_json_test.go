package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// encodingJSON is how the router encoded commands before [EncodeCommand]:
// encoding/json without HTML escaping.
func encodingJSON(t testing.TB, c TriggerCommand) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func TestEncodeCommand(t *testing.T) {
	nasty := validCommand()
	nasty.To.Subscriber.FirstName = "Zoë \"Q\" \\ <x> & y"
	nasty.To.Subscriber.LastName = "tab\tnl\nnul\x00\x1f\u2028\u2029"
	nasty.To.Subscriber.Data = map[string]string{"z": "1", "a": "<b>", "m": "\x7f", "é": "🙂"}
	bare := TriggerCommand{WorkflowID: "w", To: Recipient{Subscriber: &Subscriber{SubscriberID: "u"}}, TransactionID: "t"}
	tests := []struct {
		name  string
		given TriggerCommand
	}{
		{name: "subscriber with profile", given: validCommand()},
		{name: "topic with exclusions", given: TriggerCommand{WorkflowID: "role-changed", To: Recipient{Topic: &Topic{TopicKey: "admins", Exclude: []string{"user_1", "user_2"}}},
			Payload: json.RawMessage(`{"a":[1,2,{"b":null}]}`), TransactionID: "txn_1", SvixID: "msg_1", EventType: "role.updated"}},
		{name: "topic", given: TriggerCommand{WorkflowID: "w", To: Recipient{Topic: &Topic{TopicKey: "ops"}}, Payload: json.RawMessage(`{}`), TransactionID: "t"}},
		{name: "strings escaped as encoding/json does, HTML left alone", given: nasty},
		{name: "no payload, no timestamps", given: bare},
		{name: "no recipient", given: TriggerCommand{WorkflowID: "w", Payload: json.RawMessage(`{"x":"<&>"}`), TransactionID: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeCommand(tt.given)
			if err != nil {
				t.Fatal(err)
			}
			// Byte-identical to what the router sent before, for compact payloads.
			if want := encodingJSON(t, tt.given); !bytes.Equal(got, want) {
				t.Fatalf("EncodeCommand =\n%s\nwant (encoding/json)\n%s", got, want)
			}
			var back TriggerCommand
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("not JSON: %v: %s", err, got)
			}
			want := tt.given
			if want.Payload == nil {
				want.Payload = json.RawMessage("null")
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
			}
			for range 10 { // map order never shows
				if again, _ := EncodeCommand(tt.given); !bytes.Equal(again, got) {
					t.Fatalf("EncodeCommand changed between calls:\n%s\n%s", got, again)
				}
			}
		})
	}
}

func TestEncodeCommandKeepsPayloadBytes(t *testing.T) {
	c := validCommand()
	c.Payload = json.RawMessage("{ \"html\": \"<b>&amp;</b>\",\n \"esc\":\"\\u00e9\", \"big\": 1e400, \"n\": 123456789012345678901234567890 }")
	body, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCommand(body)
	if err != nil {
		t.Fatalf("ParseCommand(EncodeCommand(c)): %v", err)
	}
	if !bytes.Equal(got.Payload, c.Payload) {
		t.Errorf("payload %q, want byte for byte %q", got.Payload, c.Payload)
	}
}

func TestEncodeCommandInvalidPayload(t *testing.T) {
	for _, p := range []string{`{`, `{"a":1} {}`, `nope`, `{"a":1,}`} {
		c := validCommand()
		c.Payload = json.RawMessage(p)
		body, err := EncodeCommand(c)
		if !errors.Is(err, ErrInvalidCommand) || body != nil {
			t.Errorf("EncodeCommand(payload %q) = %s, %v; want ErrInvalidCommand", p, body, err)
		}
	}
}

// AppendJSONString must agree with encoding/json on every valid string.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x01\x1f\x7f", "é中文🙂", "\u2028\u2029", "<>&", "bad\xffutf8", strings.Repeat("ab", 100)} {
		got := AppendJSONString(nil, s)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(b.Bytes(), []byte{'\n'}); !bytes.Equal(got, want) {
			t.Errorf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// BenchmarkEncodeCommand compares EncodeCommand with the encoding/json
// encoder the router used before it.
func BenchmarkEncodeCommand(b *testing.B) {
	c := validCommand()
	c.Payload = json.RawMessage(`{"id":"user_2abc","email_addresses":[{"email_address":"ada@example.com","id":"idn_1"}],"first_name":"Ada","last_name":"Lovelace","created_at":1716883200000,"public_metadata":{"plan":"pro"}}`)
	b.Run("EncodeCommand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeCommand(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodingJSON(b, c)
		}
	})
}
