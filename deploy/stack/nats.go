package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/clerknovu/pipeline/pkg/events"
	jsprovision "github.com/clerknovu/pipeline/pkg/runtime/provision"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS starts an in-process JetStream server listening on host:port
// (port -1 picks a free one), storing under dir/jetstream.
func startNATS(host string, port int, dir string, log *slog.Logger) (*server.Server, error) {
	if port >= 0 {
		// nats-server reports a busy port only in its log; check first so the
		// error says what to do.
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("nats: cannot listen on %s (%w): stop what uses it or pick another port", addr, err)
		}
		_ = l.Close()
	}
	opts := &server.Options{
		ServerName: "devstack",
		Host:       host,
		Port:       port,
		JetStream:  true,
		NoSigs:     true,
		StoreDir:   filepath.Join(dir, "jetstream"),
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	s.SetLoggerV2(serverLogger{log}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("nats: server not ready after 10s")
	}
	return s, nil
}

// provision makes the server match declared once it is up (what `clerknovu
// provision` does), over a short-lived connection of its own.
func provision(ctx context.Context, url string, declared events.Resources) error {
	nc, err := nats.Connect(url, nats.Name("devstack-provision"))
	if err != nil {
		return fmt.Errorf("nats: connect to provision: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = jsprovision.PlanAndApply(ctx, js, declared)
	return err
}

// serverLogger routes nats-server's log lines to slog: notices at debug (the
// start banner is long), warnings and errors as such. Fatal is logged as an
// error: nats-server's own logger would exit the process.
type serverLogger struct{ log *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
