// Command pionturn runs pion/turn v2's TURN server over UDP on a loopback
// address with one long-term-credential user: a peer the benchmarks in
// examples/benchmarks compare sixgate's TURN frontend with. It is a
// benchmark fixture, never part of the gateway.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/pion/turn/v2"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3478", "UDP address to serve TURN on")
	relay := flag.String("relay", "127.0.0.1", "relay address (allocations listen on it)")
	realm := flag.String("realm", "sixgate", "long-term credential realm")
	user := flag.String("user", "bench", "username")
	pass := flag.String("pass", "bench-pass", "password")
	flag.Parse()

	pc, err := net.ListenPacket("udp4", *listen)
	if err != nil {
		log.Fatal(err)
	}
	key := turn.GenerateAuthKey(*user, *realm, *pass)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: *realm,
		AuthHandler: func(username, _ string, _ net.Addr) ([]byte, bool) {
			return key, username == *user
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP(*relay),
				Address:      *relay,
			},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("pion/turn v2 listening on %s (udp)", *listen)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}
