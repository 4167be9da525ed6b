package samples_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// catalogTypes is Clerk's event catalog; a type missing from what this test
// covers fails it.
var catalogTypes = events.Catalog()

// emailSlugs are the email.created slugs clerk-events.md lists, and an unknown one.
var emailSlugs = []string{
	"verification_code", "reset_password_code", "magic_link_sign_in", "magic_link_sign_up",
	"magic_link_user_profile", "invitation", "organization_invitation", "organization_invitation_accepted",
	"passkey_added", "passkey_removed", "password_changed", "password_removed",
	"primary_email_address_changed", "waitlist_confirmation", "waitlist_invitation", "new_device_sign_in",
}

// nullUserSlugs are the slugs whose data.user_id is null (clerk-events.md).
var nullUserSlugs = []string{"invitation", "waitlist_confirmation", "waitlist_invitation", "organization_invitation", "magic_link_sign_up"}

// systemInitiated are the billing events whose client_ip and user_agent are "".
var systemInitiated = []string{"subscription.pastDue", "subscriptionItem.updated", "subscriptionItem.pastDue", "subscriptionItem.freeTrialEnding", "paymentAttempt.updated"}

var (
	clerkID = regexp.MustCompile(`^[a-z]+(_[a-z]+)*_[0-9A-Za-z]{27}$`)
	svixID  = regexp.MustCompile(`^msg_[0-9A-Za-z]{27}$`)
)

// at walks body along path (object keys and array indexes) and returns the raw
// value found, failing the test when the path does not exist.
func at(t *testing.T, body []byte, path ...any) json.RawMessage {
	t.Helper()
	cur := json.RawMessage(body)
	for i, p := range path {
		switch k := p.(type) {
		case string:
			var m map[string]json.RawMessage
			if err := json.Unmarshal(cur, &m); err != nil {
				t.Fatalf("path %v: element %d is not an object: %v", path, i, err)
			}
			v, ok := m[k]
			if !ok {
				t.Fatalf("path %v: no key %q", path, k)
			}
			cur = v
		case int:
			var a []json.RawMessage
			if err := json.Unmarshal(cur, &a); err != nil || k >= len(a) {
				t.Fatalf("path %v: element %d is not an array of more than %d items", path, i, k)
			}
			cur = a[k]
		}
	}
	return cur
}

// str returns the string at path, failing when it is not a string.
func str(t *testing.T, body []byte, path ...any) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(at(t, body, path...), &s); err != nil {
		t.Fatalf("path %v: not a string: %s", path, at(t, body, path...))
	}
	return s
}

func isNull(t *testing.T, body []byte, path ...any) bool {
	t.Helper()
	return string(at(t, body, path...)) == "null"
}

func mustGet(t *testing.T, name string) samples.Sample {
	t.Helper()
	s, ok := samples.Get(name)
	if !ok {
		t.Fatalf("Get(%q): not found", name)
	}
	return s
}

func TestEverySampleParses(t *testing.T) {
	for _, s := range samples.All() {
		t.Run(s.Name, func(t *testing.T) {
			if len(s.Body) == 0 {
				t.Fatal("empty body: is the file events/" + s.Name + ".json missing?")
			}
			ev, err := events.ParseEvent(s.Body)
			if err != nil {
				t.Fatalf("ParseEvent: %v", err)
			}
			if ev.Type != s.Type {
				t.Errorf("body type %q, sample Type %q", ev.Type, s.Type)
			}
			if typ, _, _ := strings.Cut(s.Name, "/"); typ != ev.Type {
				t.Errorf("name %q does not start with the body's type %q", s.Name, ev.Type)
			}
			if ev.Object != "event" {
				t.Errorf("object %q, want event", ev.Object)
			}
			if !clerkID.MatchString(ev.InstanceID) || !strings.HasPrefix(ev.InstanceID, "ins_") {
				t.Errorf("instance_id %q is not ins_ + 27 base62", ev.InstanceID)
			}
			if ev.Timestamp < 1e12 || ev.Timestamp >= 1e13 {
				t.Errorf("timestamp %d is not Unix milliseconds", ev.Timestamp)
			}
			if len(ev.Data) == 0 || ev.Data[0] != '{' {
				t.Errorf("data is not an object: %.40s", ev.Data)
			}
			str(t, ev.EventAttributes, "http_request", "client_ip")
			str(t, ev.EventAttributes, "http_request", "user_agent")
			if s.Description == "" || strings.ContainsAny(s.Description, "\r\n") {
				t.Errorf("description %q is not one line", s.Description)
			}
			switch s.Type {
			case "email.created", "sms.created":
				if got := str(t, s.Body, "data", "slug"); got != s.Slug {
					t.Errorf("data.slug %q, sample Slug %q", got, s.Slug)
				}
			default:
				if s.Slug != "" {
					t.Errorf("Slug %q on a %s sample", s.Slug, s.Type)
				}
			}
		})
	}
}

// TestWireFormat checks the bodies are what Clerk's Go backend writes: compact,
// keys sorted, <>& escaped, non-ASCII raw. Go's encoding/json writes exactly
// that, so re-encoding a body (numbers kept as written) must give it back.
func TestWireFormat(t *testing.T) {
	for _, s := range samples.All() {
		t.Run(s.Name, func(t *testing.T) {
			if !utf8.Valid(s.Body) {
				t.Fatal("body is not UTF-8")
			}
			dec := json.NewDecoder(bytes.NewReader(s.Body))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("decode: %v", err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			if !bytes.Equal(again, s.Body) {
				i := 0
				for i < len(again) && i < len(s.Body) && again[i] == s.Body[i] {
					i++
				}
				t.Errorf("not in Clerk's wire form at byte %d:\n got %.80q\nwant %.80q", i, s.Body[i:], again[i:])
			}
			checkIDsAndTimes(t, v, "")
		})
	}
}

// notClerkIDs are *_id keys whose values are not Clerk ids.
var notClerkIDs = map[string]bool{
	"gateway_external_id": true, "gateway_external_account_id": true, "external_id": true,
	"stripe_customer_id": true, "hubspot_company_id": true, "invoice_id": true,
}

// checkIDsAndTimes walks a decoded body: every string id is <prefix>_ + 27
// base62, every numeric *_at is in milliseconds.
func checkIDsAndTimes(t *testing.T, v any, path string) {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			p := path + "." + k
			switch val := val.(type) {
			case string:
				if (k == "id" || strings.HasSuffix(k, "_id") || k == "created_by") && !notClerkIDs[k] && val != "" && !clerkID.MatchString(val) {
					t.Errorf("%s = %q is not <prefix>_ + 27 base62", p, val)
				}
			case json.Number:
				if strings.HasSuffix(k, "_at") || strings.HasSuffix(k, "_at_ms") {
					if n, err := val.Int64(); err != nil || n < 1e12 || n >= 1e13 {
						t.Errorf("%s = %s is not Unix milliseconds", p, val)
					}
				}
			default:
				checkIDsAndTimes(t, val, p)
			}
		}
	case []any:
		for _, e := range x {
			checkIDsAndTimes(t, e, path+"[]")
		}
	}
}

func TestCatalogCovered(t *testing.T) {
	for _, typ := range catalogTypes {
		s, ok := samples.Get(typ)
		if !ok {
			t.Errorf("no sample for catalog type %s", typ)
			continue
		}
		if s.Type != typ {
			t.Errorf("Get(%q).Type = %q", typ, s.Type)
		}
	}
	if n := len(catalogTypes); n != 49 {
		t.Errorf("the catalog lists %d types, want 49 (check the list against clerk-events.md)", n)
	}
	var items int
	for _, typ := range catalogTypes {
		if strings.HasPrefix(typ, "subscriptionItem.") {
			items++
		}
	}
	if items != 10 {
		t.Errorf("%d subscriptionItem types, want 10", items)
	}
}

func TestEmailSlugsCovered(t *testing.T) {
	for _, slug := range emailSlugs {
		t.Run(slug, func(t *testing.T) {
			s := mustGet(t, "email.created/"+slug)
			if s.Slug != slug {
				t.Fatalf("Slug %q", s.Slug)
			}
			b := s.Body
			if str(t, b, "data", "to_email_address") == "" {
				t.Error("empty to_email_address")
			}
			if str(t, b, "data", "object") != "email" || str(t, b, "data", "status") != "queued" {
				t.Error("object must be email and status queued")
			}
			wantNullUser := slices.Contains(nullUserSlugs, slug)
			if got := isNull(t, b, "data", "user_id"); got != wantNullUser {
				t.Errorf("user_id null = %v, want %v", got, wantNullUser)
			}
			if !wantNullUser && !strings.HasPrefix(str(t, b, "data", "user_id"), "user_") {
				t.Errorf("user_id %s", at(t, b, "data", "user_id"))
			}
			wantNullIdn := slug == "invitation" || slug == "organization_invitation" || strings.HasPrefix(slug, "waitlist_")
			if got := isNull(t, b, "data", "email_address_id"); got != wantNullIdn {
				t.Errorf("email_address_id null = %v, want %v", got, wantNullIdn)
			}
			var byClerk bool
			if err := json.Unmarshal(at(t, b, "data", "delivered_by_clerk"), &byClerk); err != nil {
				t.Fatal(err)
			}
			if want := slug == "new_device_sign_in"; byClerk != want {
				t.Errorf("delivered_by_clerk %v, want %v", byClerk, want)
			}
			for _, k := range []string{"app", "theme", "user"} {
				at(t, b, "data", "data", k)
			}
			html := str(t, b, "data", "body")
			if len(html) < 4000 || !strings.HasPrefix(html, "<!DOCTYPE html") {
				t.Errorf("body is %d bytes of %.20q, want a few KB of HTML", len(html), html)
			}
			if !bytes.Contains(b, []byte(`\u003c!DOCTYPE html`)) {
				t.Error("body HTML is not \\u003c-escaped as Clerk sends it")
			}
		})
	}
	base := mustGet(t, "email.created")
	if string(at(t, base.Body, "data", "delivered_by_clerk")) != "true" {
		t.Error("base email.created: delivered_by_clerk must be true")
	}
	for slug, keys := range map[string][]string{
		"verification_code":                {"otp_code", "requested_at", "requested_by"},
		"magic_link_sign_in":               {"magic_link", "ttl_minutes"},
		"organization_invitation":          {"action_url", "inviter_name", "org", "invitation"},
		"primary_email_address_changed":    {"previous_email_address", "new_email_address"},
		"organization_invitation_accepted": {"new_member", "org"},
		"passkey_added":                    {"passkey_name", "primary_email_address", "greeting_name"},
	} {
		b := mustGet(t, "email.created/"+slug).Body
		for _, k := range keys {
			at(t, b, "data", "data", k)
		}
	}
}

func TestSMS(t *testing.T) {
	base := mustGet(t, "sms.created")
	at(t, base.Body, "data", "created_at")
	if string(at(t, base.Body, "data", "data")) != "{}" {
		t.Error("base sms.created: data.data must be {}")
	}
	for _, name := range []string{"sms.created/verification_code", "sms.created/reset_password_code"} {
		b := mustGet(t, name).Body
		at(t, b, "data", "created_at_ms")
		if str(t, b, "data", "data", "otp_code") == "" {
			t.Errorf("%s: no otp_code", name)
		}
		if !strings.HasPrefix(str(t, b, "data", "to_phone_number"), "+") {
			t.Errorf("%s: to_phone_number is not E.164", name)
		}
		if string(at(t, b, "data", "delivered_by_clerk")) != "false" {
			t.Errorf("%s: delivered_by_clerk must be false", name)
		}
	}
	if !strings.Contains(str(t, base.Body, "data", "message"), "\n") {
		t.Error("sms message should hold a line break, as Clerk's do")
	}
}

// primaryIndex returns the index in email_addresses of primary_email_address_id, or -1.
func primaryIndex(t *testing.T, user []byte) int {
	t.Helper()
	primary := str(t, user, "primary_email_address_id")
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(at(t, user, "email_addresses"), &list); err != nil {
		t.Fatal(err)
	}
	for i, e := range list {
		if e.ID == primary {
			return i
		}
	}
	return -1
}

func TestVariants(t *testing.T) {
	t.Run("user.created primary is first", func(t *testing.T) {
		b := mustGet(t, "user.created").Body
		if i := primaryIndex(t, at(t, b, "data")); i != 0 {
			t.Errorf("primary at index %d, want 0", i)
		}
		if n := len(b); n < 1500 || n > 4000 {
			t.Errorf("user.created is %d bytes, want about 2 KB", n)
		}
	})
	t.Run("user.updated/non-primary-first", func(t *testing.T) {
		data := at(t, mustGet(t, "user.updated/non-primary-first").Body, "data")
		i := primaryIndex(t, data)
		if i <= 0 {
			t.Fatalf("primary at index %d, want > 0", i)
		}
		if str(t, data, "email_addresses", 0, "id") == str(t, data, "primary_email_address_id") {
			t.Error("email_addresses[0] is the primary")
		}
	})
	t.Run("user.created/unicode-bigint", func(t *testing.T) {
		s := mustGet(t, "user.created/unicode-bigint")
		ev, err := events.ParseEvent(s.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"account_id":9007199254740993`, `18446744073709551615`, `"rate":1.0000000000000001`, `\u003cp\u003eRobotics \u0026 AI`} {
			if !bytes.Contains(ev.Data, []byte(want)) {
				t.Errorf("Data lost %s", want)
			}
		}
		var n json.Number
		if err := json.Unmarshal(at(t, ev.Data, "public_metadata", "ledger", "account_id"), &n); err != nil || n.String() != "9007199254740993" {
			t.Errorf("account_id = %v (%v)", n, err)
		}
		first, last := str(t, ev.Data, "first_name"), str(t, ev.Data, "last_name")
		if first != "Zoë" {
			t.Errorf("first_name %q", first)
		}
		var cjk, astral bool
		for _, r := range last {
			cjk = cjk || (r >= 0x4E00 && r <= 0x9FFF)
			astral = astral || r > 0xFFFF
		}
		if !cjk || !astral {
			t.Errorf("last_name %q should hold CJK and an emoji", last)
		}
	})
	t.Run("user.created/phone-only", func(t *testing.T) {
		data := at(t, mustGet(t, "user.created/phone-only").Body, "data")
		if !isNull(t, data, "primary_email_address_id") || string(at(t, data, "email_addresses")) != "[]" {
			t.Error("want no email address")
		}
		if str(t, data, "primary_phone_number_id") != str(t, data, "phone_numbers", 0, "id") {
			t.Error("want the phone number primary")
		}
	})
	t.Run("session.revoked has a user", func(t *testing.T) {
		b := mustGet(t, "session.revoked").Body
		if str(t, b, "data", "user", "id") != str(t, b, "data", "user_id") {
			t.Error("data.user.id != data.user_id")
		}
	})
	t.Run("session.revoked/null-user", func(t *testing.T) {
		b := mustGet(t, "session.revoked/null-user").Body
		if !isNull(t, b, "data", "user") {
			t.Errorf("data.user = %s, want null", at(t, b, "data", "user"))
		}
		if !strings.HasPrefix(str(t, b, "data", "user_id"), "user_") {
			t.Error("user_id should still be set")
		}
	})
	t.Run("session.created/no-user", func(t *testing.T) {
		b := mustGet(t, "session.created/no-user").Body
		if !isNull(t, b, "data", "user") || !isNull(t, b, "data", "user_id") {
			t.Error("want user and user_id null")
		}
	})
	t.Run("organizationInvitation.created/empty-email", func(t *testing.T) {
		if got := str(t, mustGet(t, "organizationInvitation.created/empty-email").Body, "data", "email_address"); got != "" {
			t.Errorf("email_address %q", got)
		}
	})
	t.Run("organizationMembership.created/phone-identifier", func(t *testing.T) {
		b := mustGet(t, "organizationMembership.created/phone-identifier").Body
		if id := str(t, b, "data", "public_user_data", "identifier"); !strings.HasPrefix(id, "+") {
			t.Errorf("identifier %q is not a phone number", id)
		}
	})
	t.Run("subscription.created/org-payer", func(t *testing.T) {
		b := mustGet(t, "subscription.created/org-payer").Body
		if str(t, b, "data", "payer", "user_id") != "" || str(t, b, "data", "payer", "first_name") != "" {
			t.Error("an organization payer has user_id and first_name \"\"")
		}
		if !strings.HasPrefix(str(t, b, "data", "payer", "organization_id"), "org_") {
			t.Error("payer.organization_id should be an org_ id")
		}
		user := mustGet(t, "subscription.created").Body
		if !strings.HasPrefix(str(t, user, "data", "payer", "user_id"), "user_") {
			t.Error("subscription.created: payer.user_id should be a user_ id")
		}
	})
	t.Run("agent.created is unknown", func(t *testing.T) {
		s := mustGet(t, "agent.created")
		if slices.Contains(catalogTypes, s.Type) {
			t.Error("agent.created must not be a catalog type")
		}
	})
	t.Run("system-initiated billing", func(t *testing.T) {
		for _, name := range systemInitiated {
			b := mustGet(t, name).Body
			if str(t, b, "event_attributes", "http_request", "client_ip") != "" || str(t, b, "event_attributes", "http_request", "user_agent") != "" {
				t.Errorf("%s: want empty client_ip and user_agent", name)
			}
		}
		b := mustGet(t, "subscriptionItem.freeTrialEnding").Body
		if string(at(t, b, "data", "is_free_trial")) != "true" {
			t.Error("freeTrialEnding: is_free_trial must be true")
		}
	})
}

func TestFilesMatchCatalog(t *testing.T) {
	var files []string
	err := fs.WalkDir(os.DirFS("events"), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimSuffix(p, ".json"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	names := samples.Names()
	slices.Sort(files)
	sorted := slices.Sorted(slices.Values(names))
	if !slices.Equal(files, sorted) {
		t.Errorf("files and catalog differ:\nfiles   %v\ncatalog %v", files, sorted)
	}
}

func TestAllGetNames(t *testing.T) {
	all, names := samples.All(), samples.Names()
	if len(all) != len(names) {
		t.Fatalf("All has %d, Names %d", len(all), len(names))
	}
	seen := map[string]bool{}
	for i, s := range all {
		if names[i] != s.Name {
			t.Errorf("Names()[%d] = %q, All()[%d].Name = %q", i, names[i], i, s.Name)
		}
		if seen[s.Name] {
			t.Errorf("duplicate name %q", s.Name)
		}
		seen[s.Name] = true
	}
	if !slices.Equal(names, samples.Names()) {
		t.Error("Names is not stable")
	}
	if names[0] != "user.created" || names[len(names)-1] != "agent.created" {
		t.Errorf("order: first %q, last %q", names[0], names[len(names)-1])
	}
	for _, name := range []string{"", "user", "user.created/", "nope.created", "email.created/nope"} {
		if _, ok := samples.Get(name); ok {
			t.Errorf("Get(%q) found a sample", name)
		}
	}
	// Bodies are copies: changing one changes no other caller's.
	s := mustGet(t, "user.created")
	s.Body[0] = 'X'
	if again := mustGet(t, "user.created"); again.Body[0] != '{' {
		t.Error("Get returned a shared body")
	}
	all[0].Body[0] = 'X'
	if samples.All()[0].Body[0] != '{' {
		t.Error("All returned a shared body")
	}
}
