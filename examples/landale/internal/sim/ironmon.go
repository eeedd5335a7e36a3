package sim

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Challenge is an IronMON challenge (ruleset).
type Challenge struct {
	ID   int
	Name string
}

// Challenges are the simulated IronMON challenges, ids 1 to 10.
var Challenges = []Challenge{
	{1, "Standard"}, {2, "Ultimate"}, {3, "Kaizo"}, {4, "Survival"}, {5, "Super Kaizo"},
	{6, "Subpar"}, {7, "Gauntlet"}, {8, "Nuzlocke Kaizo"}, {9, "Hardcore"}, {10, "Elite Four Rush"},
}

// checkpointNames are the Kanto checkpoints of a FireRed run, in order,
// with their trainer.
var checkpointNames = [][2]string{
	{"LAB", "Rival"}, {"RIVAL1", "Rival"}, {"FIRSTTRAINER", "Bug Catcher"}, {"RIVAL2", "Rival"},
	{"BROCK", "Brock"}, {"RIVAL3", "Rival"}, {"MISTY", "Misty"}, {"SURGE", "Lt. Surge"},
	{"RIVAL4", "Rival"}, {"ROCKETHIDEOUT", "Giovanni"}, {"ERIKA", "Erika"}, {"KOGA", "Koga"},
	{"RIVAL5", "Rival"}, {"SABRINA", "Sabrina"}, {"BLAINE", "Blaine"}, {"GIOVANNI", "Giovanni"},
	{"RIVAL6", "Rival"}, {"LORELEI", "Lorelei"}, {"BRUNO", "Bruno"}, {"AGATHA", "Agatha"},
	{"LANCE", "Lance"}, {"CHAMP", "Champion"},
}

// checkpointsPerChallenge is how many checkpoints each challenge has; the
// checkpoint ids of challenge c are (c-1)*100+1 ... (c-1)*100+n.
func checkpointsPerChallenge(c int) int {
	if c == 10 { // Elite Four Rush: only the league
		return 5
	}
	return len(checkpointNames)
}

func checkpointAt(challenge, i int) (id int, name, trainer string) {
	names := checkpointNames
	if challenge == 10 {
		names = checkpointNames[len(checkpointNames)-5:]
	}
	return (challenge-1)*100 + i + 1, names[i][0], names[i][1]
}

// IronmonSim simulates Landale's IronMON TCP service and its database.
type IronmonSim struct {
	ctl *Controller
	now func() time.Time

	mu      sync.Mutex
	results []map[string]any // newest last
	seeds   map[int]int      // seed id → challenge id
	seed    int              // the current run's seed id
	nextRes int
}

// NewIronmon returns IronMON with challenges 1 to 10, a few past seeds and
// results, and seed 42 running on challenge 2.
func NewIronmon(ctl *Controller, now func() time.Time) *IronmonSim {
	if now == nil {
		now = time.Now
	}
	im := &IronmonSim{ctl: ctl, now: now, seeds: map[int]int{}, seed: 42}
	for s := 37; s <= 42; s++ {
		im.seeds[s] = 1 + s%2
	}
	// Past runs: seed 37..41 each cleared a few checkpoints then lost.
	for s := 37; s <= 41; s++ {
		cleared := 2 + (s*7)%9
		for i := 0; i <= cleared; i++ {
			im.recordLocked(s, im.seeds[s], i, i < cleared)
		}
	}
	return im
}

func (im *IronmonSim) recordLocked(seed, challenge, idx int, passed bool) map[string]any {
	_, name, trainer := checkpointAt(challenge, idx)
	im.nextRes++
	res := "win"
	if !passed {
		res = "loss"
	}
	r := map[string]any{
		"id": im.nextRes, "seed_id": seed, "checkpoint_name": name, "trainer": trainer,
		"challenge_name": Challenges[challenge-1].Name, "result": res,
	}
	im.results = append(im.results, r)
	if len(im.results) > 1000 {
		im.results = im.results[len(im.results)-1000:]
	}
	return r
}

// Status returns the TCP server status.
func (im *IronmonSim) Status(ctx context.Context) (map[string]any, error) {
	if err := im.ctl.Gate(ctx, Ironmon); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	return map[string]any{"connected": true, "port": 8080, "connection_count": 1, "current_seed": im.seed,
		"current_challenge": im.seeds[im.seed]}, nil
}

// ListChallenges returns every challenge.
func (im *IronmonSim) ListChallenges(ctx context.Context) ([]any, error) {
	if err := im.ctl.Gate(ctx, Ironmon); err != nil {
		return nil, err
	}
	out := make([]any, 0, len(Challenges))
	for _, c := range Challenges {
		out = append(out, map[string]any{"id": c.ID, "name": c.Name})
	}
	return out, nil
}

// ListCheckpoints returns the checkpoints of a challenge, in order; an
// unknown challenge has none.
func (im *IronmonSim) ListCheckpoints(ctx context.Context, challengeID int) ([]any, error) {
	if err := im.ctl.Gate(ctx, Ironmon); err != nil {
		return nil, err
	}
	out := []any{}
	if challengeID < 1 || challengeID > len(Challenges) {
		return out, nil
	}
	for i := 0; i < checkpointsPerChallenge(challengeID); i++ {
		id, name, trainer := checkpointAt(challengeID, i)
		out = append(out, map[string]any{"id": id, "name": name, "trainer": trainer, "order": i + 1,
			"challenge_id": challengeID})
	}
	return out, nil
}

func findCheckpoint(id int) (challenge, idx int, ok bool) {
	c := (id-1)/100 + 1
	i := (id - 1) % 100
	if id < 1 || c > len(Challenges) || i >= checkpointsPerChallenge(c) {
		return 0, 0, false
	}
	return c, i, true
}

// CheckpointStats returns win/loss statistics of a checkpoint.
func (im *IronmonSim) CheckpointStats(ctx context.Context, checkpointID int) (map[string]any, error) {
	if err := im.ctl.Gate(ctx, Ironmon); err != nil {
		return nil, err
	}
	c, i, ok := findCheckpoint(checkpointID)
	if !ok {
		return nil, &ServiceError{Service: Ironmon, Reason: "not_found", Message: "Checkpoint not found"}
	}
	_, name, trainer := checkpointAt(c, i)
	im.mu.Lock()
	defer im.mu.Unlock()
	wins, losses := 0, 0
	for _, r := range im.results {
		if r["checkpoint_name"] == name && r["challenge_name"] == Challenges[c-1].Name {
			if r["result"] == "win" {
				wins++
			} else {
				losses++
			}
		}
	}
	rate := 0.0
	if wins+losses > 0 {
		rate = float64(wins) / float64(wins+losses)
	}
	return map[string]any{"checkpoint_id": checkpointID, "checkpoint_name": name, "trainer": trainer,
		"challenge_id": c, "wins": wins, "losses": losses, "total_attempts": wins + losses,
		"win_rate": rate}, nil
}

// RecentResults returns the latest limit checkpoint results, newest first.
func (im *IronmonSim) RecentResults(ctx context.Context, limit int) ([]any, error) {
	if err := im.ctl.Gate(ctx, Ironmon); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	out := []any{}
	for i := len(im.results) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, im.results[i])
	}
	return out, nil
}

// ActiveChallenge returns the challenge a seed runs.
func (im *IronmonSim) ActiveChallenge(ctx context.Context, seedID int) (map[string]any, error) {
	if err := im.ctl.Gate(ctx, Ironmon); err != nil {
		return nil, err
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	c, ok := im.seeds[seedID]
	if !ok {
		return nil, &ServiceError{Service: Ironmon, Reason: "not_found", Message: fmt.Sprintf("No active challenge for seed %d", seedID)}
	}
	return map[string]any{"seed_id": seedID, "challenge_id": c, "challenge_name": Challenges[c-1].Name,
		"active": seedID == im.seed}, nil
}

// RunStep advances the current run by one checkpoint for the demo
// generator and returns the event type and data to publish: a checkpoint
// cleared, or a loss that starts a new seed.
func (im *IronmonSim) RunStep(roll int) (typ string, data map[string]any) {
	im.mu.Lock()
	defer im.mu.Unlock()
	c := im.seeds[im.seed]
	done := 0
	for _, r := range im.results {
		if r["seed_id"] == im.seed {
			done++
		}
	}
	if done >= checkpointsPerChallenge(c) || roll%5 == 0 && done > 0 {
		im.recordLocked(im.seed, c, min(done, checkpointsPerChallenge(c)-1), false)
		im.seed++
		im.seeds[im.seed] = 1 + roll%len(Challenges)
		return "ironmon.seed", map[string]any{"seed_count": im.seed, "run_id": fmt.Sprint(im.seed)}
	}
	r := im.recordLocked(im.seed, c, done, true)
	id, _, _ := checkpointAt(c, done)
	return "ironmon.checkpoint", map[string]any{"checkpoint_id": fmt.Sprint(id), "checkpoint_name": r["checkpoint_name"],
		"run_id": fmt.Sprint(im.seed), "seed_count": im.seed, "location_id": 80 + done, "location_name": r["trainer"]}
}
