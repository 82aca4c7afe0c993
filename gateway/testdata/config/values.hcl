admin {
  listen = "0.0.0.0:9090"
  pprof  = true
}
shutdown_grace = "soon"
users "staff" {
  user "alice" {
    password      = "a"
    password_hash = "$2a$10$x"
  }
  user "alice" {
    password = "b"
  }
  user "carol" {
    password_hash = "plain"
  }
}
frontend "test" "bad" {
  listen = "localhost:1080"
}
frontend "test" "open" {
  listen = "0.0.0.0:1080"
}
frontend "test" "relay" {
  listen = "127.0.0.1:3478"
  users  = "staff"
  turn   = true
}
backend "test" "out" {}
backend "other" "x" {}
route {
  commands     = ["connect", "teleport"]
  destinations = ["10.0.0.1/8", "not a name", "*.", "2001:db8::/129"]
  ports        = ["80-20", "http"]
  backend      = "out"
}
route {
  action = "maybe"
}
route {}
limits {
  handshake_timeout  = "0s"
  bandwidth_per_user = "fast"
}
