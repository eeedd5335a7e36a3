// Package readme holds no code: its test builds the Go program in the
// repository's README.md (the first Go code block, "Your first channel") in
// a module of its own, checks that its http.Server bounds slow clients
// (ReadHeaderTimeout), and that channel.Example runs the same channel code.
package readme
