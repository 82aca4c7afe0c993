# The core SOCKS 6 proxy: it accepts the edge gateway only, and relays
# directly.

admin {
  listen = "127.0.0.1:19091"
}

users "gateways" {
  user "edge" {
    password = "edge-secret"
  }
}

frontend "socks6" "core" {
  listen     = "127.0.0.1:12080"
  udp_listen = "127.0.0.1:12080"
  users      = "gateways"
}

backend "direct" "out" {}

route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}

route {
  backend = "out"
}
