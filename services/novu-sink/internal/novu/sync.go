package novu

import (
	"context"
	"net/http"
	"net/url"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/services/novu-sink/internal/outcome"
	"go.opentelemetry.io/otel/attribute"
)

// Paths of the subscriber and topic endpoints (Novu's "configuration"
// rate-limit category, separate from the triggers' "events").
const (
	SubscribersPath = "/v2/subscribers"
	TopicsPath      = "/v2/topics"
)

// Attributes of the HTTP client spans of sync calls.
const (
	subscriberIDKey = attribute.Key("novu.subscriber.id")
	topicKeyKey     = attribute.Key("novu.topic.key")
)

// UpsertSubscriber creates or updates subscriber s (POST /v2/subscribers)
// with its whole profile, see [AppendUpsertSubscriber].
func (c *Client) UpsertSubscriber(ctx context.Context, s *events.Subscriber) outcome.Answer {
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{subscriberIDKey.String(s.SubscriberID)})
	return c.do(ctx, http.MethodPost, c.base+SubscribersPath, AppendUpsertSubscriber(make([]byte, 0, 256), s), "")
}

// DeleteSubscriber deletes subscriber id with its preferences and topic
// subscriptions (DELETE /v2/subscribers/{id}); Novu answers 404 for an
// unknown id.
func (c *Client) DeleteSubscriber(ctx context.Context, id string) outcome.Answer {
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{subscriberIDKey.String(id)})
	return c.do(ctx, http.MethodDelete, c.base+SubscribersPath+"/"+url.PathEscape(id), nil, "")
}

// AddSubscriptions subscribes ids (1 to 100, the most Novu takes in one call) to topic key,
// creating the topic on first use (POST /v2/topics/{key}/subscriptions).
func (c *Client) AddSubscriptions(ctx context.Context, key string, ids []string) outcome.Answer {
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{topicKeyKey.String(key)})
	return c.do(ctx, http.MethodPost, c.topicURL(key)+"/subscriptions", AppendSubscriberIDs(nil, ids), "")
}

// RemoveSubscriptions unsubscribes ids (1 to 100, the most Novu takes in one call) from topic
// key (DELETE /v2/topics/{key}/subscriptions, with a JSON body).
func (c *Client) RemoveSubscriptions(ctx context.Context, key string, ids []string) outcome.Answer {
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{topicKeyKey.String(key)})
	return c.do(ctx, http.MethodDelete, c.topicURL(key)+"/subscriptions", AppendSubscriberIDs(nil, ids), "")
}

// DeleteTopic deletes topic key with its subscriptions (DELETE /v2/topics/{key}).
func (c *Client) DeleteTopic(ctx context.Context, key string) outcome.Answer {
	ctx = context.WithValue(ctx, spanAttrsKey{}, []attribute.KeyValue{topicKeyKey.String(key)})
	return c.do(ctx, http.MethodDelete, c.topicURL(key), nil, "")
}

func (c *Client) topicURL(key string) string { return c.base + TopicsPath + "/" + url.PathEscape(key) }

// AppendUpsertSubscriber appends the body of the upsert of s to dst: every
// field Clerk owns, an empty one as null so that Novu clears what Clerk
// removed (Novu keeps a field left out), and data always, since Novu
// replaces a subscriber's data with {} when an upsert leaves it out. The
// timezone is left out: Clerk has none, and an app may set it in Novu.
func AppendUpsertSubscriber(dst []byte, s *events.Subscriber) []byte {
	dst = append(dst, `{"subscriberId":`...)
	dst = events.AppendJSONString(dst, s.SubscriberID)
	fields := s.ProfileFields()
	for _, f := range fields[:len(fields)-1] { // not the timezone
		dst = append(dst, f.Key...)
		if f.Value == "" {
			dst = append(dst, "null"...)
		} else {
			dst = events.AppendJSONString(dst, f.Value)
		}
	}
	dst = append(dst, `,"data":`...)
	dst = events.AppendJSONStringMap(dst, s.Data)
	return append(dst, '}')
}

// AppendSubscriberIDs appends {"subscriberIds":[...]} to dst.
func AppendSubscriberIDs(dst []byte, ids []string) []byte {
	dst = append(dst, `{"subscriberIds":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = events.AppendJSONString(dst, id)
	}
	return append(dst, "]}"...)
}
