package stack

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/clerknovu/pipeline/pkg/events/samples"
)

// Post signs body as svixID with the stack's secret, as Svix does, and posts
// it to the webhook URL with client, adding extra headers. The caller closes
// the response body.
func (st *Stack) Post(ctx context.Context, client *http.Client, svixID string, body []byte, extra map[string]string) (*http.Response, error) {
	h, err := samples.Sign(st.Secret, svixID, time.Now(), body)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	return client.Do(req)
}
