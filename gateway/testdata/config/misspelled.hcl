frontend "test" "main" {
  listn = "127.0.0.1:1080"
}
backend "test" "out" {}
route {
  backend = "out"
}
