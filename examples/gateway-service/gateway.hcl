# A production-style sixgate: bcrypt users, deny rules first, per-user routes,
# SOCKS 6 over TLS beside a SOCKS 5 port, a loopback admin listener, and limits.
# Paths are relative to the working directory of the service (see
# sixgate.service: WorkingDirectory=/etc/sixgate).

admin {
  listen = "127.0.0.1:29090"   # /metrics, /livez, /readyz; keep it on loopback
  pprof  = false
}

log {
  level  = "info"
  format = "json"
}

shutdown_grace = "20s"

limits {
  handshake_timeout         = "5s"
  max_sessions              = 20000
  max_sessions_per_ip       = 200
  max_sessions_per_user     = 1000
  max_associations_per_user = 64
  idle_timeout              = "15m"
  udp_idle_timeout          = "2m"
  bandwidth_per_user        = "50MiB"
  auth_failures_per_ip      = 10
}

users "staff" {
  # bcrypt hashes (the example's passwords are alice-pw and bob-pw). Generate
  # yours with: htpasswd -bnBC 10 "" 'the password' | tr -d ':\n'
  user "alice" {
    password_hash = "$2a$10$vjZ.ZcXLsXXq4.4SsgxbFumq226SFYAzRqRts/dqGI4I0U2lt2le2"
  }
  user "bob" {
    password_hash = "$2a$10$1DwGOMy0vU1bTZj4nlfOXelyooDRbMFkXV/.hrloXEkmUzfHVDIFG"
  }
}

frontend "socks6" "tls" {
  listen     = "127.0.0.1:21443"
  udp_listen = "127.0.0.1:21443"
  users      = "staff"
  tls {
    cert_file = "tls/cert.pem"
    key_file  = "tls/key.pem"
  }
}

frontend "socks5" "legacy" {
  listen = "127.0.0.1:21080"
  users  = "staff"
}

backend "direct" "out" {
  dial_timeout = "10s"
}

# Deny rules come first: the first matching route wins.
route {
  destinations = ["10.0.0.0/8", "192.168.0.0/16"]
  action       = "deny"
}

route {
  ports  = ["25"]            # no SMTP through the proxy
  action = "deny"
}

# Only alice may reach services on this host.
route {
  users        = ["alice"]
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}

route {
  backend = "out"
}
