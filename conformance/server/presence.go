package main

import "github.com/pyre-go/pyre/channel"

// registerPresence routes presence:* to the checklist's presence channel.
func registerPresence(r *channel.Router, o appOptions) {}
