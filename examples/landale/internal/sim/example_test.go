package sim_test

import (
	"context"
	"fmt"

	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

func ExampleController() {
	ctl := sim.NewController(0)
	modes, err := sim.ParseSpec("obs=down,nurvus=failing")
	if err != nil {
		panic(err)
	}
	_ = ctl.Apply(modes)
	fmt.Println(ctl.Gate(context.Background(), sim.OBS))
	fmt.Println(ctl.Gate(context.Background(), sim.Twitch))
	// Output:
	// OBS WebSocket not connected
	// <nil>
}
