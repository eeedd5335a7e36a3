package events_test

import (
	"fmt"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

func ExampleSourceOf() {
	for _, typ := range []string{"channel.follow", "stream.online", "stream.state_updated", "obs.scene_changed", "twitch.service_status"} {
		fmt.Println(typ, "→", events.SourceOf(typ))
	}
	// Output:
	// channel.follow → twitch
	// stream.online → twitch
	// stream.state_updated → stream
	// obs.scene_changed → obs
	// twitch.service_status → twitch
}

func ExampleNormalize() {
	at := time.Date(2025, 8, 25, 16, 2, 11, 482913000, time.UTC)
	e := events.Normalize("channel.cheer", map[string]any{
		"user_id": "789012", "user_login": "follower", "user_name": "Follower",
		"broadcaster_user_id": "123456", "broadcaster_user_login": "streamer",
		"bits": 100, "message": "Cheer100 nice", "unlisted": "dropped",
	}, at)
	fmt.Println(e["type"], e["source"], e["timestamp"], e["bits"], e["is_anonymous"], e["unlisted"])
	// Output: channel.cheer twitch 2025-08-25T16:02:11.482913Z 100 false <nil>
}
