backend "test" "out" {}
backend "test" "up" {}
route {
  destinations = ["10.0.0.0/8"]
  backend      = "up"
}
route {
  backend = "out"
}
