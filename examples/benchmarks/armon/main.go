// Command armon runs github.com/armon/go-socks5 (CONNECT only, no
// authentication) on a loopback address: a peer the benchmarks in
// examples/benchmarks compare sixgate's SOCKS 5 frontend with. It is a
// benchmark fixture, never part of the gateway.
package main

import (
	"flag"
	"io"
	"log"
	"os"

	socks5 "github.com/armon/go-socks5"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1080", "address to serve SOCKS 5 on")
	quiet := flag.Bool("quiet", true, "discard the server's per-connection log")
	flag.Parse()
	logger := log.New(os.Stderr, "armon: ", log.LstdFlags)
	if *quiet {
		logger = log.New(io.Discard, "", 0)
	}
	srv, err := socks5.New(&socks5.Config{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("armon/go-socks5 listening on %s", *listen)
	log.Fatal(srv.ListenAndServe("tcp", *listen))
}
