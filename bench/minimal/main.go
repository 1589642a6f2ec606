// Command minimal is the floor of process start-up that `make bench` times
// mno's against: a Go program that prints one line and exits.
package main

import "os"

func main() { os.Stdout.WriteString("minimal\n") }
