package samples_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/samples"
	svix "github.com/svix/svix-webhooks/go"
)

// testSecret is a made-up endpoint secret: whsec_ + base64 of 24 bytes.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSignVerifiesWithSvix(t *testing.T) {
	s := mustGet(t, "user.created")
	now := time.Now()
	id := samples.NewSvixID()
	h, err := samples.Sign(testSecret, id, now, s.Body)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if len(h) != 3 || h[samples.IDHeader] != id || h[samples.TimestampHeader] != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("headers %v", h)
	}
	hdr := http.Header{}
	for k, v := range h {
		hdr.Set(k, v)
	}
	wh, err := svix.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(s.Body, hdr); err != nil {
		t.Errorf("svix Verify: %v", err)
	}
	tampered := append([]byte(nil), s.Body...)
	tampered[len(tampered)-3] = 'X'
	if err := wh.Verify(tampered, hdr); err == nil {
		t.Error("svix Verify accepted a changed body")
	}
}

// TestSignMatchesSpec recomputes the signature the way Svix documents it:
// base64(HMAC-SHA256(base64-decoded secret, id.timestamp.body)).
func TestSignMatchesSpec(t *testing.T) {
	body := []byte(`{"data":{},"object":"event","type":"user.created"}`)
	ts := time.Unix(1755500000, 0)
	h, err := samples.Sign(testSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("msg_p5jXN8AQM9LWM0D4loKWxJek.1755500000." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := h[samples.SignatureHeader]; got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
}

func TestSignErrors(t *testing.T) {
	body := []byte(`{}`)
	tests := []struct {
		name, secret, id string
		wantErr          error
	}{
		{name: "empty secret", secret: "", id: "msg_1", wantErr: samples.ErrInvalidSecret},
		{name: "not base64", secret: "whsec_not*base64!", id: "msg_1", wantErr: samples.ErrInvalidSecret},
		{name: "empty id", secret: testSecret, id: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := samples.Sign(tt.secret, tt.id, time.Now(), body)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if tt.secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(tt.secret, "whsec_")) {
				t.Errorf("error %q echoes the secret", err)
			}
		})
	}
}

func TestNewSvixID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := samples.NewSvixID()
		if !svixID.MatchString(id) {
			t.Fatalf("NewSvixID() = %q, want msg_ + 27 base62", id)
		}
		if seen[id] {
			t.Fatalf("NewSvixID repeated %q", id)
		}
		seen[id] = true
	}
}
