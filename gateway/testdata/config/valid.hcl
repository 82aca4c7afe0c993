admin {
  listen = "127.0.0.1:0"
  pprof  = true
}
shutdown_grace = "5s"
users "staff" {
  user "alice" {
    password = "s3cret"
  }
  user "bob" {
    password_hash = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
  }
}
limits {
  handshake_timeout  = "5s"
  bandwidth_per_user = "10MiB"
}
frontend "test" "main" {
  listen = "127.0.0.1:0"
  users  = "staff"
}
frontend "test" "open" {
  listen          = "0.0.0.0:0"
  allow_anonymous = true
}
backend "test" "out" {}
backend "test" "up" {
  via = "out"
}
route {
  destinations = ["10.0.0.0/8"]
  action       = "deny"
}
route {
  commands     = ["connect"]
  destinations = ["*.corp.example", "corp.example", "192.168.0.0/16"]
  ports        = ["443", "8000-8999"]
  backend      = "up"
}
route {
  backend = "out"
}
