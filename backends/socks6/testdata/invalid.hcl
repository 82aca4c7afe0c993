backend "socks6" "no_port" {
  server = "proxy.example.org"
}
backend "socks6" "bad_values" {
  server      = "proxy.example.org:1080"
  password    = "secret"
  resolve     = "nearby"
  dialect     = "draft-12"
  window_size = -1
  udp_server  = "proxy.example.org:0"
  udp_over    = "quic"
}
backend "socks6" "window_without_session" {
  server      = "[2001:db8::1]:1080"
  session     = false
  window_size = 16
}
backend "socks6" "dtls_without_tls" {
  server   = "10.0.0.1:1080"
  udp_over = "dtls"
}
backend "socks6" "missing_ca" {
  server = "10.0.0.1:1080"
  tls {
    ca_file = "testdata/does-not-exist.pem"
  }
}
backend "socks6" "tfo_via" {
  server = "10.0.0.2:1080"
  via    = "missing_ca"
  tfo    = true
}
backend "socks6" "unknown_via" {
  server = "10.0.0.3:1080"
  via    = "missing_cq"
}
