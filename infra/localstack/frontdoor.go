package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"syscall"
	"time"
)

// restartWait is how long the front door holds a request while the function
// behind it is being restarted.
const restartWait = 20 * time.Second

// frontDoor stands where Cloud Run's front end stands for the function's
// callers from outside (Stripe's webhooks, the checkout API's callers, Cloud
// Scheduler's ticks, fulfillctl): the function's URL stays reachable while
// its process is restarted. A request that arrives meanwhile waits for the
// new process (a cold start); a request whose process died under it gets
// 502. Pushes do not pass it: the redeliverers dial the process with the
// same wait (pushTransport), and retry a push whose process died under it.
type frontDoor struct {
	ln  net.Listener
	srv *http.Server
}

func startFrontDoor(listen, backend string, logs io.Writer) (*frontDoor, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("localstack: front door: %w", err)
	}
	target := &url.URL{Scheme: "http", Host: backend}
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = dialWhileRestarting
	transport.MaxIdleConnsPerHost = 64
	proxy.Transport = transport
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		fmt.Fprintf(logs, "localstack: front door %s: %v; answered 502\n", listen, err)
		http.Error(w, "function instance failed: "+err.Error(), http.StatusBadGateway)
	}
	d := &frontDoor{ln: ln, srv: &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *frontDoor) URL() string  { return "http://" + d.ln.Addr().String() }
func (d *frontDoor) Close() error { return d.srv.Close() }

// dialWhileRestarting retries a refused connection until the process is back.
func dialWhileRestarting(ctx context.Context, network, addr string) (net.Conn, error) {
	var dialer net.Dialer
	deadline := time.Now().Add(restartWait)
	for {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
