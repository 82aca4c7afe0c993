# The edge gateway legacy clients talk to. SOCKS 5 clients (curl, browsers,
# apps that predate SOCKS 6) connect here — on their own port, or on the SOCKS 6
# port (accept_socks5) so clients can move one at a time — and sixgate carries
# every session to the core proxy as SOCKS 6 (0-RTT authentication, sessions
# and idempotence tokens on the upstream leg).

admin {
  listen = "127.0.0.1:19090"
}

users "legacy" {
  user "app" {
    password = "app-secret"
  }
}

# Legacy clients on their own port.
frontend "socks5" "legacy" {
  listen = "127.0.0.1:11080"
  users  = "legacy"
}

# SOCKS 6 clients, and SOCKS 5 clients on the same port (first byte 0x05).
frontend "socks6" "mixed" {
  listen        = "127.0.0.1:11081"
  udp_listen    = "127.0.0.1:11081"
  users         = "legacy"
  accept_socks5 = true
}

# Everything goes to the core over SOCKS 6.
backend "socks6" "core" {
  server   = "127.0.0.1:12080"
  username = "edge"
  password = "edge-secret"
  resolve  = "remote"
}

route {
  destinations = ["127.0.0.0/8"]
  backend      = "core"
}

route {
  backend = "core"
}
