// Command peers connects two pion/webrtc peers whose only ICE candidates are
// TURN relays (ICE transport policy "relay"), opens a data channel between
// them, exchanges messages both ways and checks that the selected candidate
// pair is relay/relay. It is the WebRTC half of the webrtc-relay example:
// each peer can use its own TURN server, and its credentials are either
// TURN REST credentials computed from a shared secret, exactly as a web
// application hands them to browsers, or a static user.
//
//	peers -a turn:127.0.0.1:31478?transport=udp -a-secret S -a-user web-42 \
//	      -b turn:127.0.0.1:31479?transport=udp -b-user alice -b-password P
//
// It exits 0 when every message arrived, 1 otherwise (within -timeout).
package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// peerFlags are one peer's TURN server and credentials.
type peerFlags struct {
	url      *string
	secret   *string
	user     *string
	password *string
}

func newPeerFlags(name string) peerFlags {
	return peerFlags{
		url:      flag.String(name, "", "TURN URL of peer "+name+" (turn:HOST:PORT?transport=udp)"),
		secret:   flag.String(name+"-secret", "", "TURN REST shared secret of peer "+name+" (REST credentials for -"+name+"-user)"),
		user:     flag.String(name+"-user", "", "user of peer "+name+" (the REST user part, or a static user with -"+name+"-password)"),
		password: flag.String(name+"-password", "", "static password of peer "+name),
	}
}

// restCredentials returns TURN REST API credentials valid for ttl, the way
// a web application computes them for its clients: the username is
// "<unix expiry>:<user>", the password base64(HMAC-SHA1(secret, username)).
func restCredentials(secret, user string, ttl time.Duration) (username, password string) {
	username = strconv.FormatInt(time.Now().Add(ttl).Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (p peerFlags) iceServer() (webrtc.ICEServer, string, error) {
	if *p.url == "" {
		return webrtc.ICEServer{}, "", errors.New("no TURN URL")
	}
	s := webrtc.ICEServer{URLs: []string{*p.url}}
	switch {
	case *p.secret != "":
		s.Username, s.Credential = restCredentials(*p.secret, *p.user, time.Hour)
		return s, "REST user " + s.Username, nil
	case *p.user != "" && *p.password != "":
		s.Username, s.Credential = *p.user, *p.password
		return s, "user " + s.Username, nil
	}
	return webrtc.ICEServer{}, "", errors.New("credentials: give a secret, or a user and a password")
}

func main() {
	a, b := newPeerFlags("a"), newPeerFlags("b")
	n := flag.Int("n", 20, "messages each way")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("peers: ")
	done := make(chan error, 1)
	go func() { done <- run(a, b, *n) }()
	select {
	case err := <-done:
		if err != nil {
			log.Printf("FAIL: %v", err)
			os.Exit(1)
		}
	case <-time.After(*timeout):
		log.Printf("FAIL: no result within %v", *timeout)
		os.Exit(1)
	}
}

func run(a, b peerFlags, n int) error {
	var se webrtc.SettingEngine
	// The example's TURN servers and relays live on loopback.
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	newPeer := func(name string, f peerFlags) (*webrtc.PeerConnection, error) {
		ice, who, err := f.iceServer()
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", name, err)
		}
		log.Printf("peer %s: %s via %s", name, who, ice.URLs[0])
		return api.NewPeerConnection(webrtc.Configuration{
			ICETransportPolicy: webrtc.ICETransportPolicyRelay,
			ICEServers:         []webrtc.ICEServer{ice},
		})
	}
	offerer, err := newPeer("a", a)
	if err != nil {
		return err
	}
	defer offerer.Close()
	answerer, err := newPeer("b", b)
	if err != nil {
		return err
	}
	defer answerer.Close()

	// Signalling is in-process: candidates trickle straight across.
	offerer.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			answerer.AddICECandidate(c.ToJSON())
		}
	})
	answerer.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			offerer.AddICECandidate(c.ToJSON())
		}
	})

	fromA := make(chan string, n)
	fromB := make(chan string, n)
	bOpen := make(chan *webrtc.DataChannel, 1)
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { fromA <- string(m.Data) })
		dc.OnOpen(func() { bOpen <- dc })
	})
	dc, err := offerer.CreateDataChannel("chat", nil)
	if err != nil {
		return err
	}
	aOpen := make(chan struct{})
	var once sync.Once
	dc.OnOpen(func() { once.Do(func() { close(aOpen) }) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { fromB <- string(m.Data) })

	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := offerer.SetLocalDescription(offer); err != nil {
		return err
	}
	if err := answerer.SetRemoteDescription(offer); err != nil {
		return err
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := answerer.SetLocalDescription(answer); err != nil {
		return err
	}
	if err := offerer.SetRemoteDescription(answer); err != nil {
		return err
	}

	<-aOpen
	bdc := <-bOpen
	for i := range n {
		if err := dc.SendText(fmt.Sprintf("ping %d", i)); err != nil {
			return err
		}
		if err := bdc.SendText(fmt.Sprintf("pong %d", i)); err != nil {
			return err
		}
	}
	for i := range n {
		if got, want := <-fromA, fmt.Sprintf("ping %d", i); got != want {
			return fmt.Errorf("peer b got %q, want %q", got, want)
		}
		if got, want := <-fromB, fmt.Sprintf("pong %d", i); got != want {
			return fmt.Errorf("peer a got %q, want %q", got, want)
		}
	}
	for _, p := range []struct {
		name string
		pc   *webrtc.PeerConnection
	}{{"a", offerer}, {"b", answerer}} {
		pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			return fmt.Errorf("peer %s: no selected candidate pair: %v", p.name, err)
		}
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
			return fmt.Errorf("peer %s: selected pair %s is not relay/relay", p.name, pair)
		}
		log.Printf("peer %s: selected pair %s", p.name, pair)
	}
	log.Printf("ok: %d data-channel messages each way over TURN relays", n)
	return nil
}
