package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	testSecret  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-httpapi-test-secret-001"))
	otherSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("not-the-configured-secret-000002"))
)

// fixtures are realistic Clerk deliveries, one per family plus an unknown
// type, byte for byte as Clerk sends them (sorted keys, Unicode, a big
// integer that float64 would round).
var fixtures = map[string]string{
	"user.created":                     `{"data":{"birthday":"","created_at":1755499999000,"email_addresses":[{"email_address":"zoë.müller@example.com","id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC","linked_to":[],"object":"email_address","verification":{"status":"verified","strategy":"ticket"}}],"external_id":null,"first_name":"Zoë","id":"user_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aD","image_url":"https://img.clerk.com/eyJ0eXBlIjoiZGVmYXVsdCJ9","last_name":"Müller 山田 🚀","locale":"de-DE","object":"user","phone_numbers":[],"primary_email_address_id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC","primary_phone_number_id":null,"public_metadata":{"plan":{"seats":12345678901234567890}},"username":null},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64)"}},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"user.created"}`,
	"session.revoked":                  `{"data":{"abandon_at":1758092000000,"client_id":"client_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aF","created_at":1755500000000,"expire_at":1756104800000,"id":"sess_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aG","last_active_at":1755500000000,"object":"session","status":"revoked","updated_at":1755500000000,"user":null,"user_id":"user_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aD"},"event_attributes":{"http_request":{"client_ip":"","user_agent":""}},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"session.revoked"}`,
	"email.created":                    `{"data":{"body":"<html><body><p>Your code is 123456</p></body></html>","body_plain":"Your code is 123456","data":{"app":{"name":"Acme"},"otp_code":"123456"},"delivered_by_clerk":false,"email_address_id":"idn_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aC","from_email_name":"notifications","id":"ema_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aH","object":"email","slug":"verification_code","status":"queued","subject":"123456 is your verification code","to_email_address":"zoë.müller@example.com","user_id":null},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"curl/8.5.0"}},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"email.created"}`,
	"organizationMembership.created":   `{"data":{"created_at":1755500000000,"id":"orgmem_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aI","object":"organization_membership","organization":{"id":"org_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aJ","name":"Ünïcödé GmbH","slug":"unicode"},"public_user_data":{"first_name":"Zoë","identifier":"zoë.müller@example.com","image_url":"https://img.clerk.com/x","last_name":"Müller","user_id":"user_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aD"},"role":"org:member"},"event_attributes":{"http_request":{"client_ip":"203.0.113.7","user_agent":"Mozilla/5.0"}},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"organizationMembership.created"}`,
	"subscriptionItem.freeTrialEnding": `{"data":{"id":"csubi_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aK","object":"commerce_subscription_item","payer":{"email":"billing@example.com","first_name":"","image_url":"","last_name":"","organization_id":"org_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aJ","user_id":""},"status":"active"},"event_attributes":{"http_request":{"client_ip":"","user_agent":""}},"instance_id":"ins_2xQmT0d8Wc3vY5nJ1kLpR7sZ9aE","object":"event","timestamp":1755500000000,"type":"subscriptionItem.freeTrialEnding"}`,
	"newFeature.created":               `{"data":{"anything":[1,2,{"x":null}]},"object":"event","timestamp":1755500000000,"type":"newFeature.created"}`,
}

// sign returns the "v1,<base64>" signature of body by secret at ts, as Svix sends it.
func sign(t testing.TB, secret, id string, ts time.Time, body []byte) string {
	t.Helper()
	h, err := samples.Sign(secret, id, ts, body)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return h[samples.SignatureHeader]
}

// delivery is one Svix delivery attempt.
type delivery struct {
	id     string
	ts     time.Time
	body   []byte
	secret string // signs with testSecret when empty
	prefix string // header name prefix, "svix-" when empty
}

// request builds the POST of d to url.
func (d delivery) request(t testing.TB, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(d.body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	d.setHeaders(t, req.Header)
	return req
}

func (d delivery) setHeaders(t testing.TB, h http.Header) {
	secret, prefix := d.secret, d.prefix
	if secret == "" {
		secret = testSecret
	}
	if prefix == "" {
		prefix = "svix-"
	}
	h.Set("Content-Type", "application/json")
	h.Set(prefix+"id", d.id)
	h.Set(prefix+"timestamp", strconv.FormatInt(d.ts.Unix(), 10))
	h.Set(prefix+"signature", sign(t, secret, d.id, d.ts, d.body))
}

// response is what a test keeps of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

func do(t testing.TB, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// counter returns receiver_webhooks_total{outcome}.
func counter(t testing.TB, g prometheus.Gatherer, outcome string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "receiver_webhooks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("receiver_webhooks_total{outcome=%q} not found", outcome)
	return 0
}
