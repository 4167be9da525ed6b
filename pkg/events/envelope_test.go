package events

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name     string
		given    string
		want     Event
		wantErr  error
		wantData string // compared byte for byte with Data when want.Type is set
	}{
		{
			name:     "full envelope",
			given:    `{"data":{"id":"user_31Rw443GHnAnQGYn9xZeAhWJRbt"},"event_attributes":{"http_request":{"client_ip":"203.0.113.42","user_agent":"curl/8"}},"instance_id":"ins_2d3ykdYOpOfM4f2rDCpOKQcYjOi","object":"event","timestamp":1755500000000,"type":"user.created"}`,
			want:     Event{Object: "event", Type: "user.created", Timestamp: 1755500000000, InstanceID: "ins_2d3ykdYOpOfM4f2rDCpOKQcYjOi", EventAttributes: []byte(`{"http_request":{"client_ip":"203.0.113.42","user_agent":"curl/8"}}`)},
			wantData: `{"id":"user_31Rw443GHnAnQGYn9xZeAhWJRbt"}`,
		},
		{
			name:     "unicode names kept",
			given:    `{"type":"user.created","data":{"first_name":"Zoë","last_name":"中村 Ångström 🚀"}}`,
			want:     Event{Type: "user.created"},
			wantData: `{"first_name":"Zoë","last_name":"中村 Ångström 🚀"}`,
		},
		{
			name:     "integer beyond 2^53 kept exactly",
			given:    `{"type":"user.created","data":{"public_metadata":{"account_id":9007199254740993,"big":18446744073709551615,"rate":1.0000000000000001}}}`,
			want:     Event{Type: "user.created"},
			wantData: `{"public_metadata":{"account_id":9007199254740993,"big":18446744073709551615,"rate":1.0000000000000001}}`,
		},
		{
			name:     "u003c escapes kept",
			given:    `{"type":"email.created","data":{"body":"\u003c!DOCTYPE html\u003e\u003cp\u003eA \u0026 B\u003c/p\u003e","x":"\u2028"}}`,
			want:     Event{Type: "email.created"},
			wantData: `{"body":"\u003c!DOCTYPE html\u003e\u003cp\u003eA \u0026 B\u003c/p\u003e","x":"\u2028"}`,
		},
		{
			name:     "whitespace inside data kept",
			given:    "\n\t {\"type\": \"user.created\", \"data\": { \"a\" : [ 1, 2 ] } }\n",
			want:     Event{Type: "user.created"},
			wantData: `{ "a" : [ 1, 2 ] }`,
		},
		{
			name:  "timestamp in milliseconds",
			given: `{"type":"session.created","timestamp":1755500000123}`,
			want:  Event{Type: "session.created", Timestamp: 1755500000123},
		},
		{
			name:  "timestamp as a float is truncated",
			given: `{"type":"session.created","timestamp":1.755500000123e12}`,
			want:  Event{Type: "session.created", Timestamp: 1755500000123},
		},
		{
			name:  "timestamp of the wrong type tolerated",
			given: `{"type":"session.created","timestamp":"yesterday","object":7,"instance_id":false}`,
			want:  Event{Type: "session.created"},
		},
		{
			name:  "missing data tolerated",
			given: `{"object":"event","type":"agent.created"}`,
			want:  Event{Object: "event", Type: "agent.created"},
		},
		{
			name:     "null data tolerated",
			given:    `{"type":"user.deleted","data":null}`,
			want:     Event{Type: "user.deleted"},
			wantData: `null`,
		},
		{name: "not JSON", given: `hello`, wantErr: ErrInvalidEvent},
		{name: "empty body", given: ``, wantErr: ErrInvalidEvent},
		{name: "only whitespace", given: " \n", wantErr: ErrInvalidEvent},
		{name: "truncated", given: `{"type":"user.created","data":{"id":`, wantErr: ErrInvalidEvent},
		{name: "trailing garbage", given: `{"type":"user.created"} {}`, wantErr: ErrInvalidEvent},
		{name: "JSON array", given: `[{"type":"user.created"}]`, wantErr: ErrInvalidEvent},
		{name: "JSON null", given: `null`, wantErr: ErrInvalidEvent},
		{name: "JSON string", given: `"user.created"`, wantErr: ErrInvalidEvent},
		{name: "missing type", given: `{"data":{},"object":"event"}`, wantErr: ErrInvalidEvent},
		{name: "null type", given: `{"type":null}`, wantErr: ErrInvalidEvent},
		{name: "numeric type", given: `{"type":42}`, wantErr: ErrInvalidEvent},
		{name: "object type", given: `{"type":{"name":"user.created"}}`, wantErr: ErrInvalidEvent},
		{name: "empty type", given: `{"type":""}`, wantErr: ErrInvalidEvent},
		{name: "type with star", given: `{"type":"user.*"}`, wantErr: ErrInvalidEvent},
		{name: "type with gt", given: `{"type":">"}`, wantErr: ErrInvalidEvent},
		{name: "type with space", given: `{"type":"user created"}`, wantErr: ErrInvalidEvent},
		{name: "type with empty token", given: `{"type":"user..created"}`, wantErr: ErrInvalidEvent},
		{name: "type too long", given: `{"type":"` + strings.Repeat("a", MaxEventTypeLen+1) + `"}`, wantErr: ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent([]byte(tt.given))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseEvent error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q is not one line", err)
				}
				return
			}
			if !bytes.Equal(got.Data, []byte(tt.wantData)) {
				t.Errorf("Data = %s, want byte for byte %s", got.Data, tt.wantData)
			}
			if !bytes.Equal(got.EventAttributes, tt.want.EventAttributes) {
				t.Errorf("EventAttributes = %s, want %s", got.EventAttributes, tt.want.EventAttributes)
			}
			got.Data, got.EventAttributes, tt.want.EventAttributes = nil, nil, nil
			if got.Object != tt.want.Object || got.Type != tt.want.Type || got.Timestamp != tt.want.Timestamp || got.InstanceID != tt.want.InstanceID {
				t.Errorf("ParseEvent = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseEventErrorDoesNotEchoBody: a reason must not copy the (possibly
// personal) body into logs and HTTP answers.
func TestParseEventErrorDoesNotEchoBody(t *testing.T) {
	for _, body := range []string{
		`{"data":{"email":"secret.person@example.com"`,
		`{"data":{"email":"secret.person@example.com"},"type":7}`,
		`not json secret.person@example.com`,
	} {
		_, err := ParseEvent([]byte(body))
		if err == nil {
			t.Fatalf("ParseEvent(%q) succeeded", body)
		}
		if strings.Contains(err.Error(), "secret.person") {
			t.Errorf("error %q echoes the body", err)
		}
	}
}
