package benchserver

import (
	"context"
	"strconv"
	"time"
)

// Bounds of a /publish request, so that every loop ends.
const (
	MaxRate    = 100_000
	MaxSeconds = 600
	MinSize    = 32
	MaxSize    = 1 << 20
)

// PublishResult is the JSON answer of POST /publish.
type PublishResult struct {
	Channel   string  `json:"channel"`
	Rate      int     `json:"rate"`
	Seconds   int     `json:"seconds"`
	Size      int     `json:"size"`
	Published int     `json:"published"`
	Skipped   int     `json:"skipped"` // slots of the schedule not reached when the window closed
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	ElapsedS  float64 `json:"elapsed_s"`
	MaxLagMs  float64 `json:"max_lag_ms"` // worst delay of a publish behind its slot
	StartNs   int64   `json:"start_ns"`
	EndNs     int64   `json:"end_ns"`
}

// AppendPayload appends the benchmark message {"ts":ts,"seq":seq,"pad":"x…"}
// to dst, padded with x so that it is size bytes long (longer only when
// size is too small for the fields).
func AppendPayload(dst []byte, ts int64, seq, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, `,"pad":"`...)
	for len(dst)-start < size-2 {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// Pace calls publish rate times a second for seconds seconds, slot i due at
// start + i/rate. A slot that comes due late is published at once (the lag
// is reported); when the window of seconds closes, the slots not yet reached
// are counted as skipped, so Published/Seconds is the achieved rate of a
// server too busy to keep the schedule. Each payload is built just before
// its publish and carries that instant in ts. Pace stops early, with what it
// has, when ctx ends.
func Pace(ctx context.Context, rate, seconds, size int, publish func(ctx context.Context, payload []byte) error) PublishResult {
	res := PublishResult{Rate: rate, Seconds: seconds, Size: size}
	total := rate * seconds
	start := time.Now()
	end := start.Add(time.Duration(seconds) * time.Second)
	res.StartNs = start.UnixNano()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				res.Skipped = total - i
				return finish(res, start)
			}
		}
		now := time.Now()
		if !now.Before(end) || ctx.Err() != nil {
			res.Skipped = total - i
			break
		}
		if lag := float64(now.Sub(due)) / float64(time.Millisecond); lag > res.MaxLagMs {
			res.MaxLagMs = lag
		}
		// A fresh slice per message: the server may keep it (queued frames).
		payload := AppendPayload(make([]byte, 0, size+8), now.UnixNano(), i, size)
		if err := publish(ctx, payload); err != nil {
			res.Errors++
			if res.FirstErr == "" {
				res.FirstErr = err.Error()
			}
			continue
		}
		res.Published++
	}
	return finish(res, start)
}

func finish(res PublishResult, start time.Time) PublishResult {
	end := time.Now()
	res.EndNs = end.UnixNano()
	res.ElapsedS = end.Sub(start).Seconds()
	return res
}
