users "staff" {
  user "alice" {
    password = "a"
  }
}
frontend "test" "main" {
  listen = "127.0.0.1:1080"
  users  = "stuff"
}
frontend "test" "main" {
  listen = "127.0.0.1:1081"
}
backend "test" "out" {}
backend "test" "up" {
  via = "outt"
}
route {
  backend = "ot"
}
route {
  frontends = ["mian"]
  backend   = "out"
}
