package sim

import (
	"context"
	"time"
)

// World is the set of simulated services behind one server.
type World struct {
	Ctl      *Controller
	Emit     Emitter
	OBS      *OBSSim
	Twitch   *TwitchSim
	Rainwave *RainwaveSim
	Ironmon  *IronmonSim
	Nurvus   *NurvusSim
}

// NewWorld returns every simulation in its quiet initial state, publishing
// the events they cause through emit. now defaults to time.Now.
func NewWorld(ctl *Controller, emit Emitter, now func() time.Time) *World {
	w := &World{
		Ctl:      ctl,
		Emit:     emit,
		OBS:      NewOBS(ctl, emit, now),
		Twitch:   NewTwitch(ctl, emit, now),
		Rainwave: NewRainwave(ctl, emit, now),
		Ironmon:  NewIronmon(ctl, now),
		Nurvus:   NewNurvus(ctl, emit, now),
	}
	ctl.Watch(func(service string, from, to Mode) {
		if service == OBS {
			w.OBS.ModeChanged(context.Background(), from, to)
		}
	})
	return w
}
