# sixgate quickstart: a SOCKS 6 gateway (with SOCKS 5 on the same port) on
# loopback, relaying directly. Run it with
#
#   go run ./cmd/sixgate run --config examples/quickstart.hcl
#
# and try it with curl through the SOCKS 5 side:
#
#   curl --socks5-hostname alice:s3cret@127.0.0.1:1080 http://example.com/

admin {
  listen = "127.0.0.1:9090"
}

users "staff" {
  user "alice" {
    password = "s3cret"
  }
}

frontend "socks6" "main" {
  listen        = "127.0.0.1:1080"
  udp_listen    = "127.0.0.1:1080"
  users         = "staff"
  accept_socks5 = true
}

backend "direct" "out" {}

# Loopback destinations are denied unless a route lists them; this one lets
# the quickstart reach services on this machine.
route {
  destinations = ["127.0.0.0/8", "::1/128"]
  backend      = "out"
}

route {
  backend = "out"
}
