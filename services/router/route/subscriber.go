package route

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/clerknovu/pipeline/pkg/events"
)

// DefaultLocale is the locale of a subscriber whose event carries none, as in
// the reference integration.
const DefaultLocale = "en_US"

// Keys of [events.Subscriber].Data, as the reference integration sets them.
const (
	// DataClerkUserID holds the Clerk user id (user_...).
	DataClerkUserID = "clerkUserId"
	// DataUsername holds the Clerk username.
	DataUsername = "username"
)

// BuildOptions are the settings of [Build].
type BuildOptions struct {
	// DefaultLocale is the locale when the event has none (default [DefaultLocale]).
	DefaultLocale string
}

func (o BuildOptions) locale(fromEvent string) string {
	switch {
	case fromEvent != "":
		return fromEvent
	case o.DefaultLocale != "":
		return o.DefaultLocale
	}
	return DefaultLocale
}

// The typed views of data: only the fields a subscriber is built from, so the
// rest of data (metadata with integers beyond 2^53, HTML bodies) is never
// decoded. JSON null leaves a string empty.

type emailAddressJSON struct {
	ID           string `json:"id"`
	EmailAddress string `json:"email_address"`
}

type phoneNumberJSON struct {
	ID          string `json:"id"`
	PhoneNumber string `json:"phone_number"`
}

// userJSON is data of user.*, and data.user of session.*.
type userJSON struct {
	ID                    string             `json:"id"`
	FirstName             string             `json:"first_name"`
	LastName              string             `json:"last_name"`
	ImageURL              string             `json:"image_url"`
	Username              string             `json:"username"`
	Locale                string             `json:"locale"`
	PrimaryEmailAddressID string             `json:"primary_email_address_id"`
	PrimaryPhoneNumberID  string             `json:"primary_phone_number_id"`
	EmailAddresses        []emailAddressJSON `json:"email_addresses"`
	PhoneNumbers          []phoneNumberJSON  `json:"phone_numbers"`
}

type sessionJSON struct {
	UserID string    `json:"user_id"`
	User   *userJSON `json:"user"`
}

type emailJSON struct {
	UserID         string `json:"user_id"`
	ToEmailAddress string `json:"to_email_address"`
}

type smsJSON struct {
	UserID        string `json:"user_id"`
	ToPhoneNumber string `json:"to_phone_number"`
}

type organizationJSON struct {
	CreatedBy string `json:"created_by"`
}

type publicUserDataJSON struct {
	UserID     string `json:"user_id"`
	Identifier string `json:"identifier"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	ImageURL   string `json:"image_url"`
	Username   string `json:"username"`
}

type membershipJSON struct {
	PublicUserData *publicUserDataJSON `json:"public_user_data"`
}

// invitationJSON is data of organizationInvitation.*, invitation.* and waitlistEntry.*.
type invitationJSON struct {
	EmailAddress string `json:"email_address"`
	UserID       string `json:"user_id"`
}

type domainJSON struct {
	AffiliationEmailAddress string `json:"affiliation_email_address"`
}

type payerJSON struct {
	UserID         string `json:"user_id"`
	OrganizationID string `json:"organization_id"`
	Email          string `json:"email"`
	FirstName      string `json:"first_name"`
	LastName       string `json:"last_name"`
	ImageURL       string `json:"image_url"`
}

type billingJSON struct {
	Payer *payerJSON `json:"payer"`
}

// Build returns the Novu subscriber ev is about, per event family (the first
// token of its type), with its primary email and phone looked up by id, names,
// avatar, locale (the event's, else opts.DefaultLocale) and the Clerk user id
// and username in Data. Empty values are left out.
//
// It fails with [ErrNoRecipient] when ev names nobody (role.*, permission.*,
// organization.deleted, a session with no user id, an unknown family), and
// with [events.ErrInvalidEvent] when data does not have the family's shape.
func Build(ev events.Event, opts BuildOptions) (events.Subscriber, error) {
	family, _, _ := strings.Cut(ev.Type, ".")
	switch family {
	case "user":
		var u userJSON
		if err := decode(ev, &u); err != nil {
			return events.Subscriber{}, err
		}
		return fromUser(ev, u.ID, &u, opts, "data.id")
	case "session":
		var s sessionJSON
		if err := decode(ev, &s); err != nil {
			return events.Subscriber{}, err
		}
		id := s.UserID
		if id == "" && s.User != nil {
			id = s.User.ID
		}
		return fromUser(ev, id, s.User, opts, "data.user_id")
	case "email":
		var e emailJSON
		if err := decode(ev, &e); err != nil {
			return events.Subscriber{}, err
		}
		return fromAddress(ev, e.UserID, e.ToEmailAddress, "", opts, "data.user_id and data.to_email_address")
	case "sms":
		var s smsJSON
		if err := decode(ev, &s); err != nil {
			return events.Subscriber{}, err
		}
		return fromAddress(ev, s.UserID, "", s.ToPhoneNumber, opts, "data.user_id and data.to_phone_number")
	case "organization":
		var o organizationJSON
		if err := decode(ev, &o); err != nil {
			return events.Subscriber{}, err
		}
		return fromAddress(ev, o.CreatedBy, "", "", opts, "data.created_by")
	case "organizationMembership":
		var m membershipJSON
		if err := decode(ev, &m); err != nil {
			return events.Subscriber{}, err
		}
		return fromPublicUserData(ev, m.PublicUserData, opts)
	case "organizationInvitation", "invitation", "waitlistEntry":
		var inv invitationJSON
		if err := decode(ev, &inv); err != nil {
			return events.Subscriber{}, err
		}
		return fromAddress(ev, inv.UserID, inv.EmailAddress, "", opts, "data.email_address")
	case "organizationDomain":
		var d domainJSON
		if err := decode(ev, &d); err != nil {
			return events.Subscriber{}, err
		}
		return fromAddress(ev, "", d.AffiliationEmailAddress, "", opts, "data.affiliation_email_address")
	case "subscription", "subscriptionItem", "paymentAttempt":
		var b billingJSON
		if err := decode(ev, &b); err != nil {
			return events.Subscriber{}, err
		}
		return fromPayer(ev, b.Payer, opts)
	case "permission", "role":
		return events.Subscriber{}, fmt.Errorf("%w: %s events are instance configuration and name no person; route them to a topic or a fixed subscriber", ErrNoRecipient, ev.Type)
	}
	return events.Subscriber{}, fmt.Errorf("%w: the router knows no recipient for %s events; route them to a topic or a fixed subscriber", ErrNoRecipient, ev.Type)
}

// fromUser builds the subscriber of a user object (u may be nil: a session
// whose user is null).
func fromUser(ev events.Event, id string, u *userJSON, opts BuildOptions, field string) (events.Subscriber, error) {
	if id == "" {
		return events.Subscriber{}, fmt.Errorf("%w: %s has no %s", ErrNoRecipient, ev.Type, field)
	}
	s := events.Subscriber{SubscriberID: id}
	var locale, username string
	if u != nil {
		s.FirstName, s.LastName, s.Avatar = u.FirstName, u.LastName, u.ImageURL
		s.Email = primaryEmail(u.EmailAddresses, u.PrimaryEmailAddressID)
		s.Phone = primaryPhone(u.PhoneNumbers, u.PrimaryPhoneNumberID)
		locale, username = u.Locale, u.Username
	}
	s.Locale = opts.locale(locale)
	s.Data = userData(id, username)
	return s, nil
}

// fromAddress builds the subscriber of an event that names a user id and/or an
// address: the user id when there is one, else the address itself (Novu
// accepts email-shaped subscriber ids), never the event object's own id.
func fromAddress(ev events.Event, userID, email, phone string, opts BuildOptions, fields string) (events.Subscriber, error) {
	id := userID
	if id == "" {
		id = email
	}
	if id == "" {
		id = phone
	}
	if id == "" {
		return events.Subscriber{}, fmt.Errorf("%w: %s has no %s", ErrNoRecipient, ev.Type, fields)
	}
	return events.Subscriber{
		SubscriberID: id,
		Email:        email,
		Phone:        phone,
		Locale:       opts.locale(""),
		Data:         userData(userID, ""),
	}, nil
}

// fromPublicUserData builds the subscriber of an organization membership.
// The identifier is the member's primary identifier: an email, a phone number
// or a username; only the first two are contact points.
func fromPublicUserData(ev events.Event, p *publicUserDataJSON, opts BuildOptions) (events.Subscriber, error) {
	if p == nil || p.UserID == "" {
		return events.Subscriber{}, fmt.Errorf("%w: %s has no data.public_user_data.user_id", ErrNoRecipient, ev.Type)
	}
	s := events.Subscriber{
		SubscriberID: p.UserID,
		FirstName:    p.FirstName,
		LastName:     p.LastName,
		Avatar:       p.ImageURL,
		Locale:       opts.locale(""),
		Data:         userData(p.UserID, p.Username),
	}
	switch {
	case strings.Contains(p.Identifier, "@"):
		s.Email = p.Identifier
	case strings.HasPrefix(p.Identifier, "+"):
		s.Phone = p.Identifier
	}
	return s, nil
}

// fromPayer builds the subscriber of a billing event: the paying user, or the
// paying organization (whose user_id is "").
func fromPayer(ev events.Event, p *payerJSON, opts BuildOptions) (events.Subscriber, error) {
	if p == nil {
		return events.Subscriber{}, fmt.Errorf("%w: %s has no data.payer", ErrNoRecipient, ev.Type)
	}
	id := p.UserID
	if id == "" {
		id = p.OrganizationID
	}
	if id == "" {
		return events.Subscriber{}, fmt.Errorf("%w: %s has no data.payer.user_id or data.payer.organization_id", ErrNoRecipient, ev.Type)
	}
	return events.Subscriber{
		SubscriberID: id,
		FirstName:    p.FirstName,
		LastName:     p.LastName,
		Email:        p.Email,
		Avatar:       p.ImageURL,
		Locale:       opts.locale(""),
		Data:         userData(p.UserID, ""),
	}, nil
}

// userData is the subscriber data the reference sets, without empty values.
func userData(clerkUserID, username string) map[string]string {
	if clerkUserID == "" && username == "" {
		return nil
	}
	d := make(map[string]string, 2)
	if clerkUserID != "" {
		d[DataClerkUserID] = clerkUserID
	}
	if username != "" {
		d[DataUsername] = username
	}
	return d
}

// primaryEmail returns the address whose id is primaryID; not the first one,
// which user.updated makes the old address.
func primaryEmail(list []emailAddressJSON, primaryID string) string {
	if primaryID == "" {
		return ""
	}
	for _, e := range list {
		if e.ID == primaryID {
			return e.EmailAddress
		}
	}
	return ""
}

// primaryPhone returns the number whose id is primaryID.
func primaryPhone(list []phoneNumberJSON, primaryID string) string {
	if primaryID == "" {
		return ""
	}
	for _, p := range list {
		if p.ID == primaryID {
			return p.PhoneNumber
		}
	}
	return ""
}

// decode reads ev's data into v; absent or null data leaves v empty.
func decode(ev events.Event, v any) error {
	if len(ev.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(ev.Data, v); err != nil {
		return fmt.Errorf("%w: %s data: %s", events.ErrInvalidEvent, ev.Type, decodeReason(err))
	}
	return nil
}

// decodeReason describes a decoding error in one line without echoing input.
func decodeReason(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s is a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.As(err, &te):
		return fmt.Sprintf("is a JSON %s, want an object", te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed JSON"
}

// jsonKind names a Go kind the way JSON does.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	}
	return "an object"
}
