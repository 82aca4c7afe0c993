backend "socks5" "hop1" {
  server = "127.0.0.1:1080"
}
backend "socks5" "hop2" {
  server       = "proxy.example.org:1080"
  username     = "alice"
  password     = "s3cret"
  resolve      = "local"
  via          = "hop1"
  dial_timeout = "5s"
}
route {
  backend = "hop2"
}
