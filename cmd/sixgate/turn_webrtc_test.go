package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestTURNWebRTC connects two pion/webrtc peers in one process with ICE
// transport policy "relay" and sixgate as their only TURN server, opens a
// data channel, exchanges messages both ways and checks that the selected
// candidate pair is relay/relay.
func TestTURNWebRTC(t *testing.T) {
	_, srv := startTURN(t, turnBackends[0], "")
	var se webrtc.SettingEngine
	// Loopback is where the test's TURN server and relays live.
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se))
	cfg := webrtc.Configuration{
		ICETransportPolicy: webrtc.ICETransportPolicyRelay,
		ICEServers: []webrtc.ICEServer{{
			URLs:       []string{fmt.Sprintf("turn:%s?transport=udp", srv)},
			Username:   "user",
			Credential: "pass",
		}},
	}
	offerer, err := api.NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer offerer.Close()
	answerer, err := api.NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer answerer.Close()
	// Trickle candidates across.
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

	const n = 20
	fromOfferer := make(chan string, n)
	fromAnswerer := make(chan string, n)
	answererOpen := make(chan *webrtc.DataChannel, 1)
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { fromOfferer <- string(m.Data) })
		dc.OnOpen(func() { answererOpen <- dc })
	})
	dc, err := offerer.CreateDataChannel("chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	offererOpen := make(chan struct{})
	var once sync.Once
	dc.OnOpen(func() { once.Do(func() { close(offererOpen) }) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) { fromAnswerer <- string(m.Data) })

	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := offerer.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	if err := answerer.SetRemoteDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := answerer.SetLocalDescription(answer); err != nil {
		t.Fatal(err)
	}
	if err := offerer.SetRemoteDescription(answer); err != nil {
		t.Fatal(err)
	}

	var adc *webrtc.DataChannel
	select {
	case <-offererOpen:
	case <-time.After(30 * time.Second):
		t.Fatalf("data channel did not open (ice %s)", offerer.ICEConnectionState())
	}
	select {
	case adc = <-answererOpen:
	case <-time.After(10 * time.Second):
		t.Fatal("answerer's data channel did not open")
	}
	for i := range n {
		if err := dc.SendText(fmt.Sprintf("ping %d", i)); err != nil {
			t.Fatal(err)
		}
		if err := adc.SendText(fmt.Sprintf("pong %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		for _, c := range []struct {
			ch   chan string
			want string
		}{{fromOfferer, fmt.Sprintf("ping %d", i)}, {fromAnswerer, fmt.Sprintf("pong %d", i)}} {
			select {
			case got := <-c.ch:
				if got != c.want {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %q", c.want)
			}
		}
	}
	for _, pc := range []*webrtc.PeerConnection{offerer, answerer} {
		pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("no selected pair: %v", err)
		}
		if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
			t.Fatalf("selected pair %s", pair)
		}
		t.Logf("selected pair: %s", pair)
	}
}
