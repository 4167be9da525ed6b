package verify_test

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/services/receiver/internal/verify"
)

// Fixed test data: two secrets (old and new during a rotation), a clock, and a
// realistic Clerk user.created delivery.
var (
	oldSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-test-secret-old-0123456"))
	newSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-test-secret-new-6543210"))
	otherKey  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("somebody-else-entirely-987654321"))
	now       = time.Unix(1755500000, 0)
	msgID     = "msg_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aB"
	body      = []byte(`{"data":{"email_addresses":[{"email_address":"ada@example.com","id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC"}],"first_name":"Ada","id":"user_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aD","last_name":"Lovelace","primary_email_address_id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC","public_metadata":{"big":12345678901234567890}},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0"}},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"user.created"}`)
	// reformatted is body with other white space: same JSON, other bytes.
	reformatted = []byte(strings.ReplaceAll(string(body), `,"`, `, "`))
)

// sign returns the "v1,<base64>" signature of body by secret at ts, as Svix sends it.
func sign(t testing.TB, secret, id string, ts time.Time, body []byte) string {
	t.Helper()
	h, err := samples.Sign(secret, id, ts, body)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return h[samples.SignatureHeader]
}

func unix(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

func TestVerify(t *testing.T) {
	good := sign(t, oldSecret, msgID, now, body)
	goodB64 := strings.TrimPrefix(good, "v1,")
	byNew := sign(t, newSecret, msgID, now, body)
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3] = 'X' // user.creaXed
	old := now.Add(-6 * time.Minute)
	ahead := now.Add(6 * time.Minute)
	edge := now.Add(-verify.Tolerance)

	tests := []struct {
		name    string
		secrets []string
		headers verify.Headers
		body    []byte
		wantErr error
	}{
		{name: "valid", headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good}, body: body},
		{name: "missing id", headers: verify.Headers{Timestamp: unix(now), Signature: good}, body: body, wantErr: verify.ErrMissingHeaders},
		{name: "missing timestamp", headers: verify.Headers{ID: msgID, Signature: good}, body: body, wantErr: verify.ErrMissingHeaders},
		{name: "missing signature", headers: verify.Headers{ID: msgID, Timestamp: unix(now)}, body: body, wantErr: verify.ErrMissingHeaders},
		{name: "no headers", body: body, wantErr: verify.ErrMissingHeaders},
		{name: "id too long", headers: verify.Headers{ID: strings.Repeat("m", verify.MaxIDBytes+1), Timestamp: unix(now), Signature: good}, body: body, wantErr: verify.ErrHeaderTooLong},
		{name: "timestamp too long", headers: verify.Headers{ID: msgID, Timestamp: strings.Repeat("1", verify.MaxTimestampBytes+1), Signature: good}, body: body, wantErr: verify.ErrHeaderTooLong},
		{name: "signature too long", headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good + strings.Repeat(" "+good, verify.MaxSignatureBytes/len(good))}, body: body, wantErr: verify.ErrHeaderTooLong},
		{
			name:    "several signatures, only the last valid",
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: "v1,Zm9vYmFyYmF6 v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " + good},
			body:    body,
		},
		{
			name:    "several signatures, only the first valid",
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good + " v1,Zm9vYmFyYmF6"},
			body:    body,
		},
		{
			name:    "v1a entry with the right bytes is ignored",
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: "v1a," + goodB64},
			body:    body,
			wantErr: verify.ErrNoMatchingSignature,
		},
		{
			name:    "v1a entry next to a valid v1",
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: "v1a,c2lnbmF0dXJl " + good},
			body:    body,
		},
		{
			name:    "unversioned signature",
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: goodB64},
			body:    body,
			wantErr: verify.ErrNoMatchingSignature,
		},
		{
			name:    "rotated: signed by the second secret",
			secrets: []string{oldSecret, newSecret},
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: byNew},
			body:    body,
		},
		{
			name:    "rotated: signed by the first secret",
			secrets: []string{oldSecret, newSecret},
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good},
			body:    body,
		},
		{
			name:    "signed by a secret no longer configured",
			secrets: []string{newSecret},
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good},
			body:    body,
			wantErr: verify.ErrNoMatchingSignature,
		},
		{
			name:    "wrong secret",
			headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: sign(t, otherKey, msgID, now, body)},
			body:    body,
			wantErr: verify.ErrNoMatchingSignature,
		},
		{name: "tampered byte", headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good}, body: tampered, wantErr: verify.ErrNoMatchingSignature},
		{name: "JSON re-serialized with other white space", headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: good}, body: reformatted, wantErr: verify.ErrNoMatchingSignature},
		{name: "other message id", headers: verify.Headers{ID: msgID + "x", Timestamp: unix(now), Signature: good}, body: body, wantErr: verify.ErrNoMatchingSignature},
		{name: "other timestamp", headers: verify.Headers{ID: msgID, Timestamp: unix(now.Add(time.Second)), Signature: good}, body: body, wantErr: verify.ErrNoMatchingSignature},
		{name: "empty body signed", headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: sign(t, oldSecret, msgID, now, nil)}, body: nil},
		{
			name:    "6 min old",
			headers: verify.Headers{ID: msgID, Timestamp: unix(old), Signature: sign(t, oldSecret, msgID, old, body)},
			body:    body,
			wantErr: verify.ErrTimestampTooOld,
		},
		{
			name:    "6 min ahead",
			headers: verify.Headers{ID: msgID, Timestamp: unix(ahead), Signature: sign(t, oldSecret, msgID, ahead, body)},
			body:    body,
			wantErr: verify.ErrTimestampTooNew,
		},
		{
			name:    "exactly 5 min old",
			headers: verify.Headers{ID: msgID, Timestamp: unix(edge), Signature: sign(t, oldSecret, msgID, edge, body)},
			body:    body,
		},
		{name: "non-numeric timestamp", headers: verify.Headers{ID: msgID, Timestamp: "yesterday", Signature: good}, body: body, wantErr: verify.ErrInvalidTimestamp},
		{name: "timestamp in milliseconds", headers: verify.Headers{ID: msgID, Timestamp: unix(now) + "000", Signature: good}, body: body, wantErr: verify.ErrTimestampTooNew},
		{name: "fractional timestamp", headers: verify.Headers{ID: msgID, Timestamp: unix(now) + ".5", Signature: good}, body: body, wantErr: verify.ErrInvalidTimestamp},
		{name: "garbage signature", headers: verify.Headers{ID: msgID, Timestamp: unix(now), Signature: "v1,"}, body: body, wantErr: verify.ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secrets := tt.secrets
			if secrets == nil {
				secrets = []string{oldSecret}
			}
			v, err := verify.New(secrets)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = v.Verify(tt.headers, tt.body, now)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify: %v, want %v", err, tt.wantErr)
			}
			for _, s := range append(secrets, goodB64, strings.TrimPrefix(oldSecret, "whsec_")) {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q leaks a secret or the expected signature", err)
				}
			}
		})
	}
}

func TestHeadersFrom(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   verify.Headers
	}{
		{
			name:   "svix names",
			header: map[string]string{"Svix-Id": "a", "Svix-Timestamp": "1", "Svix-Signature": "v1,s"},
			want:   verify.Headers{ID: "a", Timestamp: "1", Signature: "v1,s"},
		},
		{
			name:   "webhook names",
			header: map[string]string{"Webhook-Id": "a", "Webhook-Timestamp": "1", "Webhook-Signature": "v1,s"},
			want:   verify.Headers{ID: "a", Timestamp: "1", Signature: "v1,s"},
		},
		{
			name: "both: svix wins",
			header: map[string]string{"Svix-Id": "a", "Svix-Timestamp": "1", "Svix-Signature": "v1,s",
				"Webhook-Id": "b", "Webhook-Timestamp": "2", "Webhook-Signature": "v1,t"},
			want: verify.Headers{ID: "a", Timestamp: "1", Signature: "v1,s"},
		},
		{
			name: "incomplete svix, complete webhook",
			header: map[string]string{"Svix-Id": "a",
				"Webhook-Id": "b", "Webhook-Timestamp": "2", "Webhook-Signature": "v1,t"},
			want: verify.Headers{ID: "b", Timestamp: "2", Signature: "v1,t"},
		},
		{
			name:   "incomplete svix",
			header: map[string]string{"Svix-Id": "a", "Svix-Signature": "v1,s"},
			want:   verify.Headers{ID: "a", Signature: "v1,s"},
		},
		{
			name:   "incomplete webhook",
			header: map[string]string{"Webhook-Timestamp": "2"},
			want:   verify.Headers{Timestamp: "2"},
		},
		{name: "none", header: map[string]string{}, want: verify.Headers{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := verify.HeadersFrom(func(k string) string { return tt.header[k] })
			if got != tt.want {
				t.Fatalf("HeadersFrom = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWebhookHeadersVerify(t *testing.T) {
	v, err := verify.New([]string{oldSecret})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h := map[string]string{"Webhook-Id": msgID, "Webhook-Timestamp": unix(now), "Webhook-Signature": sign(t, oldSecret, msgID, now, body)}
	if err := v.Verify(verify.HeadersFrom(func(k string) string { return h[k] }), body, now); err != nil {
		t.Fatalf("Verify with webhook-* headers: %v", err)
	}
}

func TestParseSecrets(t *testing.T) {
	bare := strings.TrimPrefix(newSecret, "whsec_")
	tests := []struct {
		name    string
		given   string
		want    []string
		wantErr error
	}{
		{name: "one", given: oldSecret, want: []string{oldSecret}},
		{name: "commas", given: oldSecret + "," + newSecret, want: []string{oldSecret, newSecret}},
		{name: "spaces", given: oldSecret + "  " + newSecret, want: []string{oldSecret, newSecret}},
		{name: "comma and space, trailing newline", given: " " + oldSecret + ", " + newSecret + ",\n", want: []string{oldSecret, newSecret}},
		{name: "no prefix is bare base64, as in the svix library", given: bare, want: []string{bare}},
		{name: "empty", given: "", wantErr: verify.ErrInvalidSecret},
		{name: "only separators", given: " ,, ", wantErr: verify.ErrInvalidSecret},
		{name: "bad base64", given: "whsec_not*base64!", wantErr: verify.ErrInvalidSecret},
		{name: "second one bad", given: oldSecret + ",whsec_%%%%", wantErr: verify.ErrInvalidSecret},
		{name: "prefix only", given: "whsec_", wantErr: verify.ErrInvalidSecret},
		{name: "1-byte key", given: "whsec_AA==", wantErr: verify.ErrInvalidSecret},
		{name: "15-byte key", given: "whsec_" + base64.StdEncoding.EncodeToString([]byte("fifteen-bytes!!")), wantErr: verify.ErrInvalidSecret},
		{name: "16-byte key", given: "whsec_" + base64.StdEncoding.EncodeToString([]byte("sixteen-bytes!!!")), want: []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("sixteen-bytes!!!"))}},
		{name: "other prefix", given: "sk_test_" + bare, wantErr: verify.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verify.ParseSecrets(tt.given)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ParseSecrets: %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "base64!") || strings.Contains(err.Error(), "%%") || strings.Contains(err.Error(), bare) {
					t.Fatalf("error %q echoes the secret", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q is not one line", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecrets: %v", err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("ParseSecrets = %q, want %q", got, tt.want)
			}
			if _, err := verify.New(got); err != nil {
				t.Fatalf("New(ParseSecrets()): %v", err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := verify.New(nil); !errors.Is(err, verify.ErrInvalidSecret) {
		t.Fatalf("New(nil): %v, want ErrInvalidSecret", err)
	}
	if _, err := verify.New([]string{oldSecret, "whsec_!!"}); !errors.Is(err, verify.ErrInvalidSecret) {
		t.Fatalf("New(bad): %v, want ErrInvalidSecret", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(strconv.Itoa(n)+"-secrets", func(b *testing.B) {
			secrets := []string{oldSecret, newSecret}[:n]
			v, err := verify.New(secrets)
			if err != nil {
				b.Fatalf("New: %v", err)
			}
			// Signed with the last secret: the worst case of a rotation.
			h := verify.Headers{ID: msgID, Timestamp: unix(now), Signature: sign(b, secrets[n-1], msgID, now, body)}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := v.Verify(h, body, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
