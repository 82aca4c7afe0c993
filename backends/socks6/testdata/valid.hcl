backend "socks6" "core" {
  server      = "proxy.example.org:1080"
  username    = "gw"
  password    = "s3cret"
  resolve     = "local"
  dialect     = "draft-10"
  session     = true
  window_size = 128
  tfo         = true
  udp_server  = "proxy.example.org:1081"
  udp_over    = "tcp"
  tls {
    server_name = "proxy.example.org"
  }
}
backend "socks6" "edge" {
  server  = "edge.example.org:1080"
  via     = "core"
  session = false
}
route {
  backend = "edge"
}
