backend "socks5" "a" {
  server = "proxy.example.org"
}
backend "socks5" "b" {
  server       = "127.0.0.1:0"
  username     = "alice"
  resolve      = "dns"
  dial_timeout = "soon"
}
backend "socks5" "c" {
  server   = "127.0.0.1:1080"
  password = "x"
  via      = "nowhere"
}
backend "socks5" "d" {
  resolve = "local"
}
backend "socks5" "e" {
  server       = "[::1]:1080"
  via          = "e"
  dial_timeout = "-1s"
}
route {
  backend = "a"
}
