# The SOCKS 6 core proxy that gateway-core.hcl relays through. It would run
# on another host; here it shares loopback with the edge.

admin {
  listen = "127.0.0.1:31092"
}

shutdown_grace = "2s"

frontend "socks6" "core" {
  listen = "127.0.0.1:31080"       # TCP, and UDP for the relay messages
}

backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
}

route {
  destinations = ["127.0.0.0/8"]   # loopback peers, for the example only
  backend      = "out"
}
