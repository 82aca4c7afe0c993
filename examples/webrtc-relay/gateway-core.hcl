# The same TURN service, but every relay lives on a SOCKS 6 core proxy
# (core.hcl): each allocation becomes a SOCKS 6 UDP ASSOCIATE there, and
# DONT-FRAGMENT, EVEN-PORT reservations and ICMP errors travel with it.
# A TURN edge in a DMZ, the relays on the core's addresses.

admin {
  listen = "127.0.0.1:31091"
}

shutdown_grace = "2s"

users "turn" {
  user "alice" {
    password = "alice-s3cret"
  }
}

frontend "turn" "webrtc" {
  listen          = "127.0.0.1:31479"
  realm           = "example.org"
  users           = "turn"
  secrets         = ["demo-rest-secret"]
  legacy_channels = true
}

backend "socks6" "core" {
  server = "127.0.0.1:31080"       # core.hcl's SOCKS 6 listener (and UDP relay endpoint)
}

route {
  commands     = ["turn-allocate"]
  destinations = ["127.0.0.0/8"]   # loopback peers, for the example only
  backend      = "core"
}
