package wstransport

import (
	"log/slog"
	"time"
)

// startIdleSweeper starts, once, the goroutine that closes idle
// connections. One goroutine scanning every connection a few times per
// timeout costs less than a timer per connection (an idle connection is
// mostly what a server holds) and closes a connection between IdleTimeout
// and IdleTimeout + a quarter of it (at most 1 s) after its last frame.
func (s *Server) startIdleSweeper() {
	s.sweepOnce.Do(func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		stop := make(chan struct{})
		s.sweepStop = stop
		s.cfg.Group.Add(1)
		s.mu.Unlock()
		go s.sweepIdle(stop)
	})
}

func (s *Server) sweepIdle(stop <-chan struct{}) {
	defer s.cfg.Group.Done()
	idle := s.cfg.IdleTimeout
	every := min(max(idle/4, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var idleConns []*Conn
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			deadline := now.Add(-idle).UnixNano()
			idleConns = idleConns[:0]
			for c := range s.cfg.Conns {
				if c.LastActivity() <= deadline {
					idleConns = append(idleConns, c)
				}
			}
			for _, c := range idleConns {
				if c.Closing() {
					continue
				}
				c.peer.Logger().LogAttrs(c.peer.Context(), slog.LevelInfo, "idle timeout, closing connection", slog.Duration("idle_timeout", idle))
				c.peer.Disconnect(closeProtocolError, "idle timeout")
			}
			clear(idleConns)
		}
	}
}
