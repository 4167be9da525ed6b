package natsconf

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	"github.com/clerknovu/pipeline/pkg/events/samples"
	"github.com/clerknovu/pipeline/pkg/runtime/eventstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// account is the JetStream account of accounts.conf.
const account = "PIPELINE"

// runCluster starts n servers from nats-server.conf clustered over loopback
// routes, as nats-server's own tests do, and waits for a JetStream meta leader.
func runCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		o := loadConfig(t)
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.StoreDir = filepath.Join(t.TempDir(), o.ServerName)
		o.Cluster = server.ClusterOpts{Name: "clerk-novu", Host: "127.0.0.1", Port: ports[i]}
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		servers[i] = runServer(t, o)
	}
	// A meta leader that knows every peer, and every server current: before
	// that, an R3 stream's placement can fail with "peer offline".
	eventstest.Eventually(t, 20*time.Second, "a JetStream meta leader with every peer current", func() bool {
		leader := false
		for _, s := range servers {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() {
				leader = len(s.JetStreamClusterPeers()) == n
			}
		}
		return leader
	})
	return servers
}

func clientURLs(servers []*server.Server) string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// On a 3-node cluster with STREAM_REPLICAS=3, shutting the CLERK stream's
// leader down mid-load loses nothing and triggers no transactionId twice: the
// receiver answers 503 with Retry-After while a new leader is elected, and
// Svix-style retries of those webhooks are stored once.
func TestClusterSurvivesCLERKLeaderLoss(t *testing.T) {
	servers := runCluster(t, 3)
	urls := clientURLs(servers)
	provisionAsAdmin(t, urls, 3)
	st, fake := startPipeline(t, urls, map[string]string{
		"STREAM_REPLICAS":          "3",
		"RECEIVER_PUBLISH_TIMEOUT": "2s",
	})

	const total, workers = 240, 4
	// Each svix-id gives its own transactionId: one trigger per event.
	sample, _ := samples.Get("user.created")
	client := &http.Client{Timeout: 10 * time.Second}
	var stored, unavailable, noRetryAfter atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				id := samples.NewSvixID()
				for attempt := 0; ; attempt++ { // Svix retries until a 2xx
					code, retryAfter, err := post(t, client, st, id, sample.Body)
					if err == nil && code/100 == 2 {
						stored.Add(1)
						break
					}
					if code == http.StatusServiceUnavailable {
						unavailable.Add(1)
						if _, perr := strconv.Atoi(retryAfter); perr != nil {
							noRetryAfter.Add(1)
						}
					} else if err == nil {
						t.Errorf("event %d: status %d, want 2xx or 503", i, code)
						return
					}
					if attempt > 100 || t.Context().Err() != nil {
						t.Errorf("event %d: not stored after %d attempts (last %d, %v)", i, attempt, code, err)
						return
					}
					time.Sleep(50 * time.Millisecond) // sooner than Retry-After asks, to keep the test short
				}
			}
		})
	}

	eventstest.Eventually(t, 15*time.Second, "a third of the events stored", func() bool { return stored.Load() >= total/3 })
	leader := -1
	for i, s := range servers {
		if s.JetStreamIsStreamLeader(account, events.StreamClerk) {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no CLERK stream leader")
	}
	servers[leader].Shutdown()
	servers[leader].WaitForShutdown()
	lost := time.Now()
	wg.Wait()

	deadline := time.Now().Add(40 * time.Second)
	for len(fake.Accepted()) < total {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d triggers at Novu after 40s; %s", len(fake.Accepted()), total, consumers(t, servers, leader))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("all triggers at Novu %v after the leader loss", time.Since(lost).Round(time.Millisecond))
	ids := map[string]bool{}
	for _, tr := range fake.Accepted() {
		ids[tr.TransactionID] = true
	}
	if len(ids) != total {
		t.Errorf("%d distinct transactionIds at Novu, want %d: events lost", len(ids), total)
	}
	if d := fake.Duplicates(); len(d) > 0 {
		t.Errorf("transactionIds triggered twice: %v", d)
	}
	if n := noRetryAfter.Load(); n > 0 {
		t.Errorf("%d of %d answers 503 without a Retry-After", n, unavailable.Load())
	}
	t.Logf("CLERK leader %s shut down; %d answers 503 during the election", servers[leader].Name(), unavailable.Load())

	// The cluster still has a leader for every stream, and CLERK kept three
	// replicas' worth of data on the two nodes left.
	admin := connectAs(t, clientURLs(append(servers[:leader:leader], servers[leader+1:]...)), "admin")
	js, _ := jetstream.New(admin)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamClerk)
	if err != nil {
		t.Fatalf("CLERK after the leader loss: %v", err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != total {
		t.Errorf("CLERK holds %v messages (err %v), want %d: each stored once", info.State.Msgs, err, total)
	}
}

// consumers describes the pipeline's consumers on the servers left, for a failure message.
func consumers(t *testing.T, servers []*server.Server, lost int) string {
	admin := connectAs(t, clientURLs(append(servers[:lost:lost], servers[lost+1:]...)), "admin")
	js, _ := jetstream.New(admin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for stream, durable := range map[string]string{events.StreamClerk: events.DurableRouter, events.StreamNovu: events.DurableSink} {
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", durable, err))
			continue
		}
		i := c.CachedInfo()
		out = append(out, fmt.Sprintf("%s: pending %d, ack pending %d, waiting pulls %d, redelivered %d, leader %s",
			durable, i.NumPending, i.NumAckPending, i.NumWaiting, i.NumRedelivered, i.Cluster.Leader))
	}
	return strings.Join(out, "; ")
}
