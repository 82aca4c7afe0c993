//go:build race

package socks6

const raceEnabled = true
