# A TURN server for WebRTC, relaying directly from this host.
#
# Browsers and apps get TURN REST credentials from your web application
# (username "<unix expiry>:<user>", password base64(HMAC-SHA1(secret,
# username))), so no per-user state lives here; a static user is kept for
# tools and tests. Ports are the example's (loopback); see README.md for a
# public deployment.

admin {
  listen = "127.0.0.1:31090"       # /metrics, /livez, /readyz
}

shutdown_grace = "2s"

users "turn" {
  user "alice" {
    password = "alice-s3cret"
  }
}

frontend "turn" "webrtc" {
  listen          = "127.0.0.1:31478" # UDP and TCP; 0.0.0.0:3478 in production
  realm           = "example.org"
  users           = "turn"
  secrets         = ["demo-rest-secret"] # newest first; add the next one before retiring this one
  legacy_channels = true                 # coturn's turnutils_uclient uses RFC 5766 channel numbers
}

# Relays on loopback for the example. In production set the host's public
# address instead (bind_ipv4 / advertise_ipv4) and drop the loopback
# destinations below.
backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
}

# Allocations go to "out". Loopback and private peers are refused unless a
# route lists them: the example's peers live on 127.0.0.1.
route {
  commands     = ["turn-allocate"]
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
