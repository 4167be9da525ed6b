package events

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidateSubjectTokens(t *testing.T) {
	len200 := strings.Repeat("ab.", 66) + "ab" // 200 bytes
	len201 := len200 + "c"
	tests := []struct {
		name    string
		given   string
		want    []string
		wantErr error
	}{
		{name: "two tokens", given: "user.created", want: []string{"user", "created"}},
		{name: "camel case", given: "organizationMembership.created", want: []string{"organizationMembership", "created"}},
		{name: "underscore dash digit", given: "user_created-2", want: []string{"user_created-2"}},
		{name: "many tokens", given: "a.b.c.d", want: []string{"a", "b", "c", "d"}},
		{name: "200 bytes", given: len200, want: strings.Split(len200, ".")},
		{name: "201 bytes", given: len201, wantErr: ErrInvalidSubject},
		{name: "empty", given: "", wantErr: ErrInvalidSubject},
		{name: "star wildcard", given: "user.*", wantErr: ErrInvalidSubject},
		{name: "star inside token", given: "us*er.created", wantErr: ErrInvalidSubject},
		{name: "gt wildcard", given: "user.>", wantErr: ErrInvalidSubject},
		{name: "gt alone", given: ">", wantErr: ErrInvalidSubject},
		{name: "space", given: "user created", wantErr: ErrInvalidSubject},
		{name: "tab", given: "user\tcreated", wantErr: ErrInvalidSubject},
		{name: "trailing space", given: "user.created ", wantErr: ErrInvalidSubject},
		{name: "empty middle token", given: "a..b", wantErr: ErrInvalidSubject},
		{name: "leading dot", given: ".a", wantErr: ErrInvalidSubject},
		{name: "trailing dot", given: "a.", wantErr: ErrInvalidSubject},
		{name: "only a dot", given: ".", wantErr: ErrInvalidSubject},
		{name: "accented letter", given: "usér.created", wantErr: ErrInvalidSubject},
		{name: "CJK", given: "用户.created", wantErr: ErrInvalidSubject},
		{name: "emoji", given: "user.🚀", wantErr: ErrInvalidSubject},
		{name: "NUL", given: "user\x00.created", wantErr: ErrInvalidSubject},
		{name: "newline", given: "user\ncreated", wantErr: ErrInvalidSubject},
		{name: "carriage return", given: "user.created\r", wantErr: ErrInvalidSubject},
		{name: "DEL", given: "user\x7f", wantErr: ErrInvalidSubject},
		{name: "slash", given: "email.created/magic_link", wantErr: ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSubjectTokens(tt.given)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValidateSubjectTokens(%q) = %v, want %v", tt.given, err, tt.wantErr)
			}
			got, err := SubjectTokens(tt.given)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SubjectTokens(%q) error %v, want %v", tt.given, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SubjectTokens(%q) = %q, want %q", tt.given, got, tt.want)
			}
			if err != nil && strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Errorf("error %q is not one printable line", err)
			}
		})
	}
}

func TestValidateToken(t *testing.T) {
	tests := []struct {
		given   string
		wantErr error
	}{
		{given: "welcome-email"},
		{given: "user_created-2"},
		{given: "user.created", wantErr: ErrInvalidSubject},
		{given: "", wantErr: ErrInvalidSubject},
		{given: "*", wantErr: ErrInvalidSubject},
		{given: "a b", wantErr: ErrInvalidSubject},
	}
	for _, tt := range tests {
		if err := ValidateToken(tt.given); !errors.Is(err, tt.wantErr) {
			t.Errorf("ValidateToken(%q) = %v, want %v", tt.given, err, tt.wantErr)
		}
	}
}

func TestClerkSubject(t *testing.T) {
	tests := []struct {
		given   string
		want    string
		wantErr error
	}{
		{given: "user.created", want: "clerk.user.created"},
		{given: "organizationMembership.created", want: "clerk.organizationMembership.created"},
		{given: "subscriptionItem.freeTrialEnding", want: "clerk.subscriptionItem.freeTrialEnding"},
		{given: "agent.created", want: "clerk.agent.created"},
		{given: "user.*", wantErr: ErrInvalidSubject},
		{given: "user.>", wantErr: ErrInvalidSubject},
		{given: "", wantErr: ErrInvalidSubject},
		{given: "a..b", wantErr: ErrInvalidSubject},
	}
	for _, tt := range tests {
		got, err := ClerkSubject(tt.given)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ClerkSubject(%q) = %q, %v; want %q, %v", tt.given, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			typ, ok := EventTypeFromSubject(got)
			if !ok || typ != tt.given {
				t.Errorf("EventTypeFromSubject(%q) = %q, %v", got, typ, ok)
			}
		}
	}
	if _, ok := EventTypeFromSubject("novu.trigger.x"); ok {
		t.Error("EventTypeFromSubject accepted a novu subject")
	}
}

func TestNovuTriggerSubject(t *testing.T) {
	tests := []struct {
		given   string
		want    string
		wantErr error
	}{
		{given: "welcome-email", want: "novu.trigger.welcome-email"},
		{given: "user_created-2", want: "novu.trigger.user_created-2"},
		{given: "user.created", wantErr: ErrInvalidSubject}, // two tokens
		{given: "", wantErr: ErrInvalidSubject},
		{given: ">", wantErr: ErrInvalidSubject},
		{given: "wel come", wantErr: ErrInvalidSubject},
	}
	for _, tt := range tests {
		got, err := NovuTriggerSubject(tt.given)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("NovuTriggerSubject(%q) = %q, %v; want %q, %v", tt.given, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDLQSubject(t *testing.T) {
	tests := []struct {
		stage, suffix, want string
	}{
		{stage: StageRouter, suffix: "user.created", want: "dlq.router.user.created"},
		{stage: StageSink, suffix: "welcome-email", want: "dlq.sink.welcome-email"},
		{stage: StageRouter, suffix: "user.*", want: "dlq.router.invalid"},
		{stage: StageRouter, suffix: "user created", want: "dlq.router.invalid"},
		{stage: StageSink, suffix: "", want: "dlq.sink.invalid"},
		{stage: StageSink, suffix: "a..b", want: "dlq.sink.invalid"},
		{stage: StageRouter, suffix: "usér", want: "dlq.router.invalid"},
	}
	for _, tt := range tests {
		got := DLQSubject(tt.stage, tt.suffix)
		if got != tt.want {
			t.Errorf("DLQSubject(%q, %q) = %q, want %q", tt.stage, tt.suffix, got, tt.want)
		}
		if err := ValidateSubjectTokens(got); err != nil {
			t.Errorf("DLQSubject(%q, %q) = %q is not publishable: %v", tt.stage, tt.suffix, got, err)
		}
	}
}

// TestCatalogSubjects: the precomputed subjects of the catalog's types are
// what ClerkSubject builds for any other type, every catalog type is valid
// subject tokens (the table skips the check), and naming a catalog type's
// subject from a body copies nothing.
func TestCatalogSubjects(t *testing.T) {
	if len(catalogSubjects) != len(catalog) {
		t.Fatalf("%d subjects for %d catalog types: a duplicate in the catalog?", len(catalogSubjects), len(catalog))
	}
	for _, typ := range catalog {
		if err := ValidateSubjectTokens(typ); err != nil {
			t.Errorf("catalog type %q: %v", typ, err)
		}
		if got, err := ClerkSubject(typ); err != nil || got != ClerkSubjectPrefix+typ {
			t.Errorf("ClerkSubject(%q) = %q, %v", typ, got, err)
		}
		body := []byte(`{"data":{},"object":"event","type":"` + typ + `"}`)
		var got, subject string
		allocs := testing.AllocsPerRun(10, func() {
			got, _ = EventType(body)
			subject, _ = ClerkSubject(got)
		})
		if got != typ || subject != ClerkSubjectPrefix+typ {
			t.Errorf("EventType and ClerkSubject of %q: %q, %q", typ, got, subject)
		}
		if allocs != 0 {
			t.Errorf("EventType and ClerkSubject of catalog type %q: %.0f allocations, want 0", typ, allocs)
		}
	}
	// A type Clerk adds later still works, at the price of a copy.
	body := []byte(`{"data":{},"object":"event","type":"agent.created"}`)
	if got, err := EventType(body); err != nil || got != "agent.created" {
		t.Errorf("EventType of a type outside the catalog = %q, %v", got, err)
	}
}

// TestInCatalog: every catalog type is in the catalog, a later or made-up
// type and the empty string are not.
func TestInCatalog(t *testing.T) {
	for _, typ := range Catalog() {
		if !InCatalog(typ) {
			t.Errorf("InCatalog(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", "agent.created", "user", "clerk.user.created"} {
		if InCatalog(typ) {
			t.Errorf("InCatalog(%q) = true", typ)
		}
	}
}
