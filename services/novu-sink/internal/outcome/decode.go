package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// TriggerResponse is Novu's TriggerEventResponseDto, unwrapped from {"data": ...}.
type TriggerResponse struct {
	// Acknowledged is true on every 2xx.
	Acknowledged bool `json:"acknowledged"`
	// Status is any string: Novu adds values over time, so none is rejected.
	Status string `json:"status"`
	// Error holds the messages of a bulk item whose status is "error".
	Error []string `json:"error,omitempty"`
	// TransactionID echoes the request's transactionId.
	TransactionID string `json:"transactionId,omitempty"`
	// Raw is the item's JSON as received (set by [DecodeBulk]).
	Raw json.RawMessage `json:"-"`
}

// ErrUndecodable reports a 2xx body that is not Novu's {"data": ...} answer.
var ErrUndecodable = errors.New("undecodable novu response")

// DecodeTrigger decodes a single-trigger answer {"data":{...}}. It also
// accepts an unwrapped object, as a proxy or an older server may send.
func DecodeTrigger(body []byte) (TriggerResponse, error) {
	var w struct {
		Data *TriggerResponse `json:"data"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return TriggerResponse{}, fmt.Errorf("%w: %s", ErrUndecodable, jsonReason(err))
	}
	if w.Data != nil {
		if w.Data.Status == "" {
			return TriggerResponse{}, fmt.Errorf("%w: no status", ErrUndecodable)
		}
		return *w.Data, nil
	}
	var r TriggerResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status == "" {
		return TriggerResponse{}, fmt.Errorf("%w: no data", ErrUndecodable)
	}
	return r, nil
}

// DecodeBulk decodes a bulk answer {"data":[{...},...]}, items in request order.
func DecodeBulk(body []byte) ([]TriggerResponse, error) {
	var w struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUndecodable, jsonReason(err))
	}
	if w.Data == nil {
		return nil, fmt.Errorf("%w: no data", ErrUndecodable)
	}
	out := make([]TriggerResponse, len(w.Data))
	for i, raw := range w.Data {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("%w: item %d: %s", ErrUndecodable, i, jsonReason(err))
		}
		out[i].Raw = raw
	}
	return out, nil
}

func errCount(got, want int) error {
	return fmt.Errorf("%w: %d results for %d events", ErrUndecodable, got, want)
}

// errorMessage extracts a short message from a Novu error body (ErrorDto,
// ValidationErrorDto, PayloadValidationExceptionDto): message, then the first
// validation messages. A body that is not JSON yields its first bytes.
func errorMessage(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var e struct {
		Message json.RawMessage            `json:"message"`
		Errors  map[string]json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return firstBytes(body, 120)
	}
	var parts []string
	var s string
	var list []string
	switch {
	case json.Unmarshal(e.Message, &s) == nil && s != "":
		parts = append(parts, s)
	case json.Unmarshal(e.Message, &list) == nil && len(list) > 0:
		parts = append(parts, strings.Join(list, "; "))
	}
	keys := make([]string, 0, len(e.Errors))
	for k := range e.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var field struct {
			Messages []string `json:"messages"`
		}
		if json.Unmarshal(e.Errors[k], &field) == nil && len(field.Messages) > 0 {
			parts = append(parts, k+": "+strings.Join(field.Messages, "; "))
		}
	}
	return strings.Join(parts, ": ")
}

func firstBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "")
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s is not a %s", te.Field, te.Type)
	}
	return "malformed"
}
