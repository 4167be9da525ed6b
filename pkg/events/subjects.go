package events

import (
	"errors"
	"fmt"
	"strings"
)

// Stream names.
const (
	// StreamClerk stores every verified Clerk webhook, on subjects clerk.<type>.
	StreamClerk = "CLERK"
	// StreamNovu stores trigger commands, on subjects novu.trigger.<workflowId>.
	StreamNovu = "NOVU"
	// StreamDLQ stores dead letters from every stage, on subjects dlq.<stage>.<...>.
	StreamDLQ = "DLQ"
)

// Subjects and subject prefixes.
const (
	// ClerkSubjectPrefix prefixes every Clerk event subject: clerk.<type>.
	ClerkSubjectPrefix = "clerk."
	// ClerkSubjectsAll captures every Clerk event.
	ClerkSubjectsAll = ClerkSubjectPrefix + ">"
	// NovuTriggerSubjectPrefix prefixes every trigger command: novu.trigger.<workflowId>.
	NovuTriggerSubjectPrefix = "novu.trigger."
	// NovuTriggerSubjectsAll captures every trigger command.
	NovuTriggerSubjectsAll = NovuTriggerSubjectPrefix + ">"
	// NovuSyncSubjectPrefix prefixes every subscriber and topic sync command
	// (stream NOVU): novu.sync.<kind>.<...>.
	NovuSyncSubjectPrefix = "novu.sync."
	// NovuSyncSubjectsAll captures every sync command.
	NovuSyncSubjectsAll = NovuSyncSubjectPrefix + ">"
	// DLQSubjectPrefix prefixes every dead letter: dlq.<stage>.<...>.
	DLQSubjectPrefix = "dlq."
	// DLQSubjectsAll captures every dead letter.
	DLQSubjectsAll = DLQSubjectPrefix + ">"
)

// Dead-letter stages: the second token of a dlq.<stage>.<...> subject.
const (
	// StageRouter marks events the router could not turn into commands.
	StageRouter = "router"
	// StageSink marks commands Novu refused or that exhausted their retries.
	StageSink = "sink"
)

// Durable consumer names.
const (
	// DurableRouter is the durable pull consumer on [StreamClerk] shared by all router instances.
	DurableRouter = "router"
	// DurableSink is the durable pull consumer on [StreamNovu] shared by all sink instances.
	DurableSink = "novu-sink"
	// DurableSinkSync is the durable pull consumer of sync commands
	// ([NovuSyncSubjectsAll]) on [StreamNovu], shared by all sink instances.
	// It is separate from [DurableSink] so that Novu's configuration rate
	// limit never slows triggers.
	DurableSinkSync = "novu-sink-sync"
)

// RoutesKVKey is the key, in the router's rules KV bucket, that holds the YAML rules.
const RoutesKVKey = "rules"

// MaxEventTypeLen bounds an event type (and so a subject suffix) in bytes.
const MaxEventTypeLen = 200

// ErrInvalidSubject reports a string that cannot be used as subject tokens.
var ErrInvalidSubject = errors.New("invalid subject")

// SubjectTokens validates s as a dot-separated sequence of subject tokens and
// returns the tokens. Each token is one or more of [A-Za-z0-9_-]; tokens are
// separated by single dots; the whole is at most [MaxEventTypeLen] bytes. Wildcards
// (* and >), whitespace, empty tokens, control characters and non-ASCII bytes are
// rejected with an error wrapping [ErrInvalidSubject].
func SubjectTokens(s string) ([]string, error) {
	if err := ValidateSubjectTokens(s); err != nil {
		return nil, err
	}
	return strings.Split(s, "."), nil
}

// ValidateSubjectTokens is [SubjectTokens] without the allocation of the token slice.
func ValidateSubjectTokens(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrInvalidSubject)
	case len(s) > MaxEventTypeLen:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidSubject, len(s), MaxEventTypeLen)
	}
	tokenLen := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if tokenLen == 0 {
				return fmt.Errorf("%w: empty token in %q", ErrInvalidSubject, s)
			}
			tokenLen = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			tokenLen++
		default:
			return fmt.Errorf("%w: byte %q at %d in %q", ErrInvalidSubject, c, i, s)
		}
	}
	if tokenLen == 0 {
		return fmt.Errorf("%w: empty token in %q", ErrInvalidSubject, s)
	}
	return nil
}

// ValidateToken checks that s is exactly one subject token ([A-Za-z0-9_-]+),
// as a workflow id must be.
func ValidateToken(s string) error {
	if err := ValidateSubjectTokens(s); err != nil {
		return err
	}
	if strings.IndexByte(s, '.') >= 0 {
		return fmt.Errorf("%w: %q holds a dot, want a single token", ErrInvalidSubject, s)
	}
	return nil
}

// ClerkSubject returns clerk.<eventType>, e.g. clerk.organizationMembership.created.
func ClerkSubject(eventType string) (string, error) {
	if subject, ok := catalogSubjects[eventType]; ok {
		return subject, nil
	}
	if err := ValidateSubjectTokens(eventType); err != nil {
		return "", fmt.Errorf("event type: %w", err)
	}
	return ClerkSubjectPrefix + eventType, nil
}

// EventTypeFromSubject returns the event type of a clerk.<type> subject.
func EventTypeFromSubject(subject string) (string, bool) {
	return strings.CutPrefix(subject, ClerkSubjectPrefix)
}

// NovuTriggerSubject returns novu.trigger.<workflowID>. The workflow id must be one token.
func NovuTriggerSubject(workflowID string) (string, error) {
	if err := ValidateToken(workflowID); err != nil {
		return "", fmt.Errorf("workflow id: %w", err)
	}
	return NovuTriggerSubjectPrefix + workflowID, nil
}

// DLQSubject returns dlq.<stage>.<suffix>, e.g. dlq.router.user.created or
// dlq.sink.user-created. A suffix that is not valid subject tokens is replaced by
// "invalid", so a dead letter can always be published.
func DLQSubject(stage, suffix string) string {
	if ValidateSubjectTokens(suffix) != nil {
		suffix = "invalid"
	}
	return DLQSubjectPrefix + stage + "." + suffix
}
