backend "test" "a" {
  via = "b"
}
backend "test" "b" {
  via = "c"
}
backend "test" "c" {
  via = "a"
}
backend "test" "d" {
  via = "a"
}
route {
  backend = "a"
}
