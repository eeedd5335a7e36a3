package channel

import (
	"log/slog"
	"time"
)

// idleActivity is implemented by transports whose connections the server
// closes after Options.IdleTimeout without a frame from the client.
type idleActivity interface {
	// lastActivity returns the unix nanos of the last frame received.
	lastActivity() int64
}

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
		s.wg.Add(1)
		s.mu.Unlock()
		go s.sweepIdle(stop)
	})
}

func (s *Server) sweepIdle(stop <-chan struct{}) {
	defer s.wg.Done()
	idle := s.opts.IdleTimeout
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
			s.mu.Lock()
			for c := range s.conns {
				if a, ok := c.t.(idleActivity); ok && a.lastActivity() <= deadline {
					idleConns = append(idleConns, c)
				}
			}
			s.mu.Unlock()
			for _, c := range idleConns {
				if c.isClosing() {
					continue
				}
				c.log.LogAttrs(c.ctx, slog.LevelInfo, "idle timeout, closing connection", slog.Duration("idle_timeout", idle))
				c.Close(CloseProtocolError, "idle timeout")
			}
			clear(idleConns)
		}
	}
}

// stopIdleSweeper ends the sweeper; the caller waits for it through s.wg.
func (s *Server) stopIdleSweeper() {
	s.mu.Lock()
	stop := s.sweepStop
	s.sweepStop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
	}
}
