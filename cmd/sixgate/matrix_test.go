package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sixgate/sixgate/backends/socks5/dantetest"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// The end-to-end matrix: every frontend (SOCKS 6, SOCKS 5, TURN) against
// every backend topology (direct; an upstream SOCKS 6 proxy, which is a
// second sixgate; Dante as an upstream SOCKS 5 proxy; and the chain
// sixgate -> backend "socks5" via a backend "socks6" -> the upstream
// sixgate -> danted -> destination), for every capability the frontend has.
//
// The expected outcome of every cell is fixed in mxExpected, so that no cell
// can quietly turn into a refusal: a cell passes, or ends in the documented
// refusal named there (a clear reply code, never a hang), or the frontend
// has no such command at all (n/a). Anything else fails the test. The table
// is printed at the end and copied into translate/README.md.
//
// Each backend topology is started once and every frontend's cells run
// against it; the upstream sixgate and danted are shared by the topologies
// that use them.

// mxOutcome is how a cell ends.
type mxOutcome uint8

const (
	mxPass    mxOutcome = iota // the capability works end to end
	mxRefused                  // the documented refusal with its code
	mxNA                       // the frontend has no such command
	mxFail                     // anything else
)

func (o mxOutcome) String() string {
	switch o {
	case mxPass:
		return "pass"
	case mxRefused:
		return "documented refusal"
	case mxNA:
		return "n/a"
	}
	return "FAIL"
}

// mxResult is a cell's outcome with what was observed (a reply code, the
// TTL seen at the far end, ...); short is what the table shows of it.
type mxResult struct {
	outcome mxOutcome
	detail  string
	short   string
}

func mxOK(format string, args ...any) mxResult {
	return mxResult{outcome: mxPass, detail: fmt.Sprintf(format, args...)}
}

func mxRefusal(format string, args ...any) mxResult {
	return mxResult{outcome: mxRefused, detail: fmt.Sprintf(format, args...)}
}

// with sets what the table shows of a result.
func (r mxResult) with(short string) mxResult { r.short = short; return r }

func mxFailed(err error) mxResult { return mxResult{outcome: mxFail, detail: err.Error()} }

// The matrix's axes.
var (
	mxFrontends = []string{"socks6", "socks5", "turn"}
	mxBackends  = []string{"direct", "socks6", "socks5", "chain"}
	// mxCaps are the capabilities: a stream (CONNECT), a datagram round
	// trip, BIND, the proxy-remote leg's TTL, DF and port parity, and two
	// failures every client must see in its own protocol's words: a
	// CONNECT refused at the far end, and a destination the routes deny.
	mxCaps = []string{"stream", "datagram", "bind", "ttl", "df", "even-port", "refused", "denied"}
)

// mxBackendTitle names a backend topology in the table.
var mxBackendTitle = map[string]string{
	"direct": "direct",
	"socks6": "socks6 upstream (sixgate)",
	"socks5": "socks5 upstream (danted)",
	"chain":  "chain socks5 via socks6 (sixgate → sixgate → danted)",
}

// mxExpect is a cell's fixed expectation: the outcome and, for a refusal or
// n/a, why (shown in the table).
type mxExpect struct {
	outcome mxOutcome
	why     string
}

// mxExpected fixes every cell's outcome. A refusal is accepted only where a
// protocol cannot express the thing at all.
func mxExpected(fe, be, capability string) mxExpect {
	socks5Last := be == "socks5" || be == "chain" // Dante is the last hop
	switch {
	case fe == "turn" && (capability == "stream" || capability == "refused"):
		return mxExpect{mxNA, "TURN streams are RFC 6062 TCP relays, a separate issue (TestTURNTCPRelay)"}
	case fe == "turn" && capability == "bind":
		return mxExpect{mxNA, "TURN has no BIND; RFC 6062 ConnectionAttempt is a separate issue (TestTURNTCPRelay, TestTURNTCPUclient)"}
	case fe == "turn" && capability == "ttl":
		return mxExpect{mxNA, "TURN has no TTL attribute (RFC 8656 §14 copies the client packet's TTL per datagram)"}
	case fe == "socks5" && (capability == "ttl" || capability == "df" || capability == "even-port"):
		return mxExpect{mxNA, "SOCKS 5 has no stack options"}
	case fe == "socks6" && socks5Last && (capability == "ttl" || capability == "df" || capability == "even-port"):
		return mxExpect{mxRefused, "SOCKS 5 cannot express stack options: the option is not echoed (unsupported), the association works"}
	case fe == "turn" && socks5Last && capability == "df":
		return mxExpect{mxRefused, "420 UNKNOWN-ATTRIBUTES DONT-FRAGMENT: SOCKS 5 cannot ask for DF"}
	case fe == "turn" && socks5Last && capability == "even-port":
		return mxExpect{mxRefused, "508: SOCKS 5 cannot ask for a port parity or a reservation"}
	}
	return mxExpect{mxPass, ""}
}

// mxTargets are the destinations every cell reaches, on 127.0.0.1.
type mxTargets struct {
	tcpEcho  string         // TCP echo
	httpPort int            // HTTP server for curl
	udpEcho  netip.AddrPort // UDP echo
	ttlEcho  netip.AddrPort // UDP echo that reports the TTL it received
}

// mxTopo is one running backend topology: a front sixgate with one
// frontend of each protocol, routed to the backend under test.
type mxTopo struct {
	g      *gatewayProc
	s6, s5 string         // SOCKS 6 and SOCKS 5 listeners
	turn   netip.AddrPort // TURN listener (UDP and TCP)
}

// mxFrontConfig is the front sixgate: SOCKS 6, SOCKS 5 and TURN frontends
// on 127.0.0.1, backend blocks (the one the routes use is named "out"),
// and the destinations allowed (test-only routes: loopback or a lab).
func mxFrontConfig(s6, s5, turn int, backends, dests string) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
users "staff" {
  user "user" {
    password = "pass"
  }
}
frontend "socks6" "s6" {
  listen = "127.0.0.1:%d"
}
frontend "socks5" "s5" {
  listen = "127.0.0.1:%d"
}
frontend "turn" "turn" {
  listen = "127.0.0.1:%d"
  realm  = "sixgate"
  users  = "staff"
}
%s
route {
  destinations = [%s]
  backend      = "out"
}
`, s6, s5, turn, backends, dests)
}

// mxUpstreamConfig is the upstream sixgate: a SOCKS 6 frontend relaying
// directly to the destinations allowed.
func mxUpstreamConfig(port int, dests string) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "up" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {}
route {
  destinations = [%s]
  backend      = "out"
}
`, port, dests)
}

// mxLoopbackDests are the test-only routes of the loopback topologies.
const mxLoopbackDests = `"127.0.0.0/8"`

// startMxTopo starts the front sixgate of a topology for the running
// (sub)test, inside a network namespace when prefix says so.
func startMxTopo(t *testing.T, backends, dests string, prefix []string) *mxTopo {
	t.Helper()
	p6, p5, pt := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g := startGatewayCmd(t, mxFrontConfig(p6, p5, pt, backends, dests), prefix)
	return &mxTopo{
		g:    g,
		s6:   fmt.Sprintf("127.0.0.1:%d", p6),
		s5:   fmt.Sprintf("127.0.0.1:%d", p5),
		turn: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(pt)),
	}
}

// mxBackendHCL returns the backend blocks of a topology given the upstream
// sixgate's and danted's addresses.
func mxBackendHCL(backend, upstream, dante string) string {
	switch backend {
	case "direct":
		return `backend "direct" "out" {}`
	case "socks6":
		return fmt.Sprintf("backend \"socks6\" \"out\" {\n  server = %q\n}", upstream)
	case "socks5":
		return fmt.Sprintf("backend \"socks5\" \"out\" {\n  server = %q\n}", dante)
	case "chain":
		return fmt.Sprintf("backend \"socks6\" \"hop\" {\n  server = %q\n}\n"+
			"backend \"socks5\" \"out\" {\n  server = %q\n  via    = \"hop\"\n}", upstream, dante)
	}
	panic("unknown backend " + backend)
}

// mxCell runs one cell.
type mxCell func(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult

// mxCells maps "frontend/capability" to the cell; a missing entry is n/a.
var mxCells = map[string]mxCell{
	"socks6/stream":    mxS6Stream,
	"socks6/datagram":  mxS6Datagram,
	"socks6/bind":      mxS6Bind,
	"socks6/ttl":       mxS6TTL,
	"socks6/df":        mxS6DF,
	"socks6/even-port": mxS6EvenPort,
	"socks6/refused":   mxS6Refused,
	"socks6/denied":    mxS6Denied,
	"socks5/stream":    mxS5Stream,
	"socks5/datagram":  mxS5Datagram,
	"socks5/bind":      mxS5Bind,
	"socks5/refused":   mxS5Refused,
	"socks5/denied":    mxS5Denied,
	"turn/datagram":    mxTURNDatagram,
	"turn/df":          mxTURNDF,
	"turn/even-port":   mxTURNEvenPort,
	"turn/denied":      mxTURNDenied,
}

// TestMatrix runs every frontend x backend x capability cell and prints the
// table. See the comment at the top of this file.
func TestMatrix(t *testing.T) {
	start := time.Now()
	tg := &mxTargets{
		tcpEcho:  echoServer(t),
		httpPort: socks5upHTTP(t),
		udpEcho:  udpEcho(t, "127.0.0.1:0").LocalAddr().(*net.UDPAddr).AddrPort(),
		ttlEcho:  ttlEcho(t),
	}
	upPort := gatewaytest.FreePort(t)
	startGateway(t, mxUpstreamConfig(upPort, mxLoopbackDests))
	upstream := fmt.Sprintf("127.0.0.1:%d", upPort)
	dante := dantetest.Start(t, dantetest.Options{})

	results := map[string]mxResult{}
	timings := map[string]time.Duration{}
	for _, be := range mxBackends {
		t.Run(be, func(t *testing.T) {
			bstart := time.Now()
			defer func() { timings[be] = time.Since(bstart) }()
			topo := startMxTopo(t, mxBackendHCL(be, upstream, dante.Addr), mxLoopbackDests, nil)
			for _, fe := range mxFrontends {
				for _, c := range mxCaps {
					key := fe + "/" + be + "/" + c
					want := mxExpected(fe, be, c)
					cell := mxCells[fe+"/"+c]
					if cell == nil {
						results[key] = mxResult{outcome: mxNA, detail: want.why}
						if want.outcome != mxNA {
							t.Errorf("%s: no cell for an expected %s", key, want.outcome)
						}
						continue
					}
					t.Run(fe+"/"+c, func(t *testing.T) {
						// A cell that stops the subtest (t.Fatal) is a FAIL.
						res := mxResult{outcome: mxFail, detail: "stopped: see the subtest's log"}
						defer func() {
							results[key] = res
							if res.outcome != want.outcome {
								t.Errorf("%s -> %s, %s: %s (%s), want %s %s", fe, be, c, res.outcome, res.detail, want.outcome, want.why)
							}
						}()
						res = cell(t, topo, tg)
					})
				}
			}
		})
	}
	t.Logf("matrix in %v (%s)", time.Since(start).Round(time.Millisecond), mxTimings(timings))
	t.Log("\n" + mxTable(results))
}

func mxTimings(m map[string]time.Duration) string {
	var parts []string
	for _, be := range mxBackends {
		parts = append(parts, fmt.Sprintf("%s %v", be, m[be].Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

// mxTable renders the results as a Markdown table, one row per
// frontend -> backend pair and one column per capability, with the reasons
// for refusals and n/a cells as numbered notes below it.
func mxTable(results map[string]mxResult) string {
	var b strings.Builder
	notes := mxNotes{}
	b.WriteString("| frontend → backend |")
	for _, c := range mxCaps {
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n|---|")
	for range mxCaps {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, fe := range mxFrontends {
		for _, be := range mxBackends {
			fmt.Fprintf(&b, "| %s → %s |", fe, mxBackendTitle[be])
			for _, c := range mxCaps {
				r, ok := results[fe+"/"+be+"/"+c]
				b.WriteString(" " + mxCellText(r, ok, mxExpected(fe, be, c), notes) + " |")
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(notes.String())
	return b.String()
}

// mxCellText is one cell of a table.
func mxCellText(r mxResult, ok bool, want mxExpect, notes mxNotes) string {
	var cell string
	switch {
	case !ok:
		cell = "not run"
	case r.outcome == mxFail || r.outcome != want.outcome:
		cell = "**FAIL** " + notes.ref("FAIL: "+r.detail)
	case r.outcome == mxNA:
		cell = "n/a " + notes.ref(want.why)
	case r.outcome == mxRefused:
		cell = "refused " + notes.ref(want.why)
		if r.short != "" {
			cell = "refused: " + r.short + " " + notes.ref(want.why)
		}
	default:
		cell = "pass"
		if r.short != "" {
			cell = "pass: " + r.short
		}
	}
	return strings.ReplaceAll(cell, "|", "/")
}

// mxNotes numbers the reasons a table's cells refer to.
type mxNotes map[string]int

func (n mxNotes) ref(why string) string {
	if _, ok := n[why]; !ok {
		n[why] = len(n) + 1
	}
	return fmt.Sprintf("[%d]", n[why])
}

func (n mxNotes) String() string {
	lines := make([]string, len(n))
	for why, i := range n {
		lines[i-1] = fmt.Sprintf("[%d] %s  ", i, why)
	}
	return "\n" + strings.Join(lines, "\n") + "\n"
}

// mxCtx is the bound of one step of a cell.
func mxCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
