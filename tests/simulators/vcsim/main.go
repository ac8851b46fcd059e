// Command vcsim serves govmomi's vSphere API simulator on one loopback
// address over HTTPS, for Simplestack's tests.
//
// It prints the SDK URL as the first line of output, then the credentials,
// and serves until SIGTERM or SIGINT. GET /simulator/stats returns the
// number of SOAP Login calls served, as {"logins": N}. Build it in GOPATH mode against
// Debian's golang-github-vmware-govmomi-dev: tests/simulators/vcsim/build.py
// does that.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	// Registers the /rest endpoints (sessions, tags, content libraries).
	// They exist in the vCenter model only.
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback `address:port` to serve on (port 0: a free one)")
	user := flag.String("user", "", "the only user name that logs in (required)")
	password := flag.String("password", "", "the only password that logs in (required)")
	certFile := flag.String("cert", "", "PEM server certificate chain (required)")
	keyFile := flag.String("key", "", "PEM private key of -cert (required)")
	caBundle := flag.String("ca-bundle", "", "CA bundle path to print for clients (optional)")
	esx := flag.Bool("esx", false, "model a standalone ESX host instead of a vCenter")
	vms := flag.Int("vms", 2, "virtual machines per resource pool")
	autostart := flag.Bool("autostart", true, "power on the model's virtual machines")
	delay := flag.Int("delay-ms", 0, "milliseconds added to every SOAP call")
	flag.Parse()

	if *user == "" || *password == "" || *certFile == "" || *keyFile == "" {
		fail("-user, -password, -cert and -key are required")
	}
	if *delay < 0 {
		fail("invalid -delay-ms %d: expected 0 or more", *delay)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		fail("invalid -listen %q: %v", *listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fail("invalid -listen %q: the host must be a loopback IP address", *listen)
	}
	certificate, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fail("cannot load the TLS certificate: %v", err)
	}

	model := simulator.VPX()
	if *esx {
		model = simulator.ESX()
	}
	model.Machine = *vms
	model.Autostart = *autostart
	model.DelayConfig.Delay = *delay
	if err := model.Create(); err != nil {
		fail("cannot create the simulator model: %v", err)
	}
	defer model.Remove()

	// A user other than simulator.DefaultLogin makes login strict: only
	// this user name and password log in.
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *password)}
	model.Service.RegisterEndpoints = true
	simulator.RegisterEndpoint(requireRestLogin)
	simulator.RegisterEndpoint(countLogins)
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{certificate}}
	server, err := startServer(model.Service)
	if err != nil {
		model.Remove()
		fail("cannot listen on %s: %v", *listen, err)
	}
	defer server.Close()

	address := *server.URL
	address.User = nil
	fmt.Println(address.String())
	fmt.Printf("log in as: %s / %s\n", *user, *password)
	if *caBundle != "" {
		fmt.Printf("CA bundle: %s\n", *caBundle)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}

// startServer calls NewServer, which panics when the address is in use,
// and returns that panic as an error.
func startServer(service *simulator.Service) (server *simulator.Server, err error) {
	defer func() {
		if reason := recover(); reason != nil {
			err = fmt.Errorf("%v", reason)
		}
	}()
	return service.NewServer(), nil
}

// restSession is the vAPI login path. govmomi's vAPI simulator accepts any
// non-empty user name and password there.
const restSession = "/rest/com/vmware/cis/session"

// requireRestLogin makes vAPI logins with HTTP Basic credentials as strict as
// SOAP logins: other credentials get 401. It runs after the vAPI simulator
// has registered its /rest/ handler, which serves every other request.
func requireRestLogin(service *simulator.Service, _ *simulator.Registry) {
	rest, pattern := service.ServeMux.Handler(&http.Request{URL: &url.URL{Path: restSession}})
	if pattern != "/rest/" {
		return // The ESX model has no vAPI endpoints.
	}
	password, _ := service.Listen.User.Password()
	service.ServeMux.HandleFunc(restSession, func(w http.ResponseWriter, r *http.Request) {
		requestUser, requestPassword, basic := r.BasicAuth()
		if r.Method == http.MethodPost && basic &&
			(requestUser != service.Listen.User.Username() || requestPassword != password) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// logins counts the SOAP Login calls served, for GET /simulator/stats.
var logins int64

// countLogins serves /sdk through a handler that counts Login calls, and
// GET /simulator/stats. ServeMux lets a pattern with a host name take
// precedence over the simulator's own /sdk pattern, which has none.
func countLogins(service *simulator.Service, _ *simulator.Registry) {
	host, _, err := net.SplitHostPort(service.Listen.Host)
	if err != nil {
		fail("invalid service address %q: %v", service.Listen.Host, err)
	}
	service.ServeMux.HandleFunc(host+"/sdk", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// pyVmomi and govmomi send <Login xmlns="urn:vim25">.
		if bytes.Contains(body, []byte("<Login ")) || bytes.Contains(body, []byte("<Login>")) {
			atomic.AddInt64(&logins, 1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		service.ServeSDK(w, r)
	})
	service.ServeMux.HandleFunc("/simulator/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"logins": atomic.LoadInt64(&logins)})
	})
}

func fail(format string, arguments ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim: "+format+"\n", arguments...)
	os.Exit(2)
}
