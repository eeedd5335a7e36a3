package longpoll

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Session is one LongPoll session: the transport of one connection of the
// owner, whose side is its Peer. Outbound messages wait in a bounded queue
// for the next poll; inbound lines are fed to Peer.Deliver in order by a
// goroutine (feed) that runs only while POSTs are being handled, so that a
// session costs no goroutine until it is used and none while it is idle. A
// timer reaps the session when it goes idle; the session is finished
// (finish: its peer ends, its share is given back) by feed when it runs at
// the close, else by a goroutine started then.
type Session struct {
	st     *State
	peer   Peer // set by Init, during Config.Connect
	id     string
	token  string
	client string // the client key, for MaxSessionsPerClient

	in      chan lpLine   // POSTed lines, handed to feed one at a time
	stop    chan struct{} // closed by Close
	posting chan struct{} // one POST at a time, so batches never interleave

	closeOnce sync.Once
	wg        sync.WaitGroup // forwarded requests served for other nodes

	mu        sync.Mutex
	closed    bool
	queue     [][]byte
	bytes     int
	wake      chan struct{} // closed to wake the held poll
	pollGen   uint64        // increments with every poll; a superseded poll sees a newer one
	polling   bool          // a poll is held
	lastPoll  time.Time     // end of the last poll (or creation)
	closeCode int           // the close code and reason, for the log
	closeWhy  string

	ready     bool          // start ran: peer is set, the idle timer armed
	feeding   bool          // feed runs
	posters   int           // POSTs handing lines to feed
	finishing bool          // finish has been claimed
	idle      *time.Timer   // reaps the session after IdleTimeout without a poll
	feedIdle  chan struct{} // (1) the last POST is done: feed may end
}

// lpLine is one decoded POSTed line (Peer.Decode) and the signal that
// feed handled it.
type lpLine struct {
	msg  any
	done chan struct{}
}

func (st *State) newLPSession(client string) *Session {
	id := randomID(16)
	return &Session{
		st:       st,
		id:       id,
		token:    st.sign(id),
		client:   client,
		in:       make(chan lpLine),
		stop:     make(chan struct{}),
		posting:  make(chan struct{}, 1),
		feedIdle: make(chan struct{}, 1),
		lastPoll: time.Now(),
	}
}

// Init sets the session's peer. Config.Connect calls it before the peer
// can send anything.
func (ss *Session) Init(p Peer) { ss.peer = p }

// QueuedBytes returns the bytes of the messages waiting for the next poll.
func (ss *Session) QueuedBytes() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.bytes
}

// Queue queues one encoded text message for the next poll, in order. It
// does not block: past Config.MaxQueuedMessages or Config.MaxQueueBytes it
// tells the peer (Peer.SlowConsumer) instead.
func (ss *Session) Queue(b []byte) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	max, maxBytes := ss.st.opts.MaxQueuedMessages, ss.st.opts.MaxQueueBytes
	if len(ss.queue) >= max || (ss.bytes > 0 && ss.bytes+len(b) > maxBytes) {
		n, nb := len(ss.queue), ss.bytes
		ss.mu.Unlock()
		ss.peer.Logger().LogAttrs(ss.peer.Context(), slog.LevelDebug, "longpoll queue full",
			slog.Int("queued", n), slog.Int("queued_bytes", nb),
			slog.Int("max_messages", max), slog.Int("max_bytes", maxBytes))
		ss.peer.SlowConsumer()
		return
	}
	ss.queue = append(ss.queue, b)
	ss.bytes += len(b)
	ss.wakeLocked()
	ss.mu.Unlock()
}

func (ss *Session) wakeLocked() {
	if ss.wake != nil {
		close(ss.wake)
		ss.wake = nil
	}
}

// Close closes the session: the queue is dropped, a held poll is answered
// 410 and the session is finished (by feed if it runs, else by a goroutine
// started here). It may run before newSession has started the session (a
// "disconnect" broadcast right after the connect step): start then
// finishes the session. It does not block.
func (ss *Session) Close(code int, reason string) {
	ss.closeOnce.Do(func() {
		ss.mu.Lock()
		ss.closed = true
		ss.closeCode, ss.closeWhy = code, reason
		ss.queue, ss.bytes = nil, 0
		ss.wakeLocked()
		fin := ss.claimFinishLocked()
		ss.mu.Unlock()
		close(ss.stop)
		if fin {
			go ss.finish()
		}
	})
}

// start arms the idle timer once the connect step succeeded; the owner's
// Config.Group counts the session until finish.
func (ss *Session) start() {
	ss.mu.Lock()
	ss.ready = true
	ss.idle = time.AfterFunc(ss.st.opts.IdleTimeout, ss.checkIdle)
	fin := ss.claimFinishLocked()
	ss.mu.Unlock()
	if fin {
		go ss.finish() // closed before it started
	}
}

// claimFinishLocked reports whether the caller must finish the session: it
// is closed and started, feed is not running (feed finishes it then), and
// nobody claimed it before.
func (ss *Session) claimFinishLocked() bool {
	if !ss.closed || !ss.ready || ss.feeding || ss.finishing {
		return false
	}
	ss.finishing = true
	return true
}

// checkIdle runs on the idle timer: it closes the session when it has been
// without a poll for IdleTimeout, else sets the timer for the rest.
func (ss *Session) checkIdle() {
	idle := ss.st.opts.IdleTimeout
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	var d time.Duration
	if !ss.polling {
		d = time.Since(ss.lastPoll)
	}
	if d < idle {
		ss.idle.Reset(idle - d)
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	ss.peer.Logger().LogAttrs(ss.peer.Context(), slog.LevelInfo, "longpoll session idle, closing", slog.Duration("idle_timeout", idle))
	ss.peer.Disconnect(closeProtocolError, "idle timeout")
}

// poll takes the queued messages, waiting up to Window for the first one.
// It returns 200 with messages, 204 without, or 410 when the session
// closed. Messages stay queued when ctx ends first (the client went away).
func (ss *Session) poll(ctx context.Context) (int, [][]byte) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return lpGone, nil
	}
	ss.pollGen++
	gen := ss.pollGen
	ss.wakeLocked() // supersedes a held poll
	ss.polling = true
	if len(ss.queue) > 0 {
		return ss.endPollLocked()
	}
	wake := make(chan struct{})
	ss.wake = wake
	ss.mu.Unlock()

	t := time.NewTimer(ss.st.opts.Window)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	}

	ss.mu.Lock()
	if ss.pollGen != gen {
		ss.mu.Unlock()
		return lpNoContent, nil // superseded by a newer poll
	}
	if ss.wake == wake {
		ss.wake = nil
	}
	if ss.closed {
		ss.polling = false
		ss.mu.Unlock()
		return lpGone, nil
	}
	if ctx.Err() != nil {
		ss.polling = false
		ss.lastPoll = time.Now()
		ss.mu.Unlock()
		return lpNoContent, nil
	}
	return ss.endPollLocked()
}

// endPollLocked ends the current poll, taking the queue, and unlocks ss.mu.
func (ss *Session) endPollLocked() (int, [][]byte) {
	msgs := ss.queue
	ss.queue, ss.bytes = nil, 0
	ss.polling = false
	ss.lastPoll = time.Now()
	ss.mu.Unlock()
	if len(msgs) == 0 {
		return lpNoContent, nil
	}
	return lpOK, msgs
}

// acquire counts a forwarded request served for another node in ss.wg,
// unless the session is closed; finish waits for them.
func (ss *Session) acquire() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	ss.wg.Add(1)
	return true
}

// post hands lines to feed in order, each within Window, and returns the
// logical status of the POST.
func (ss *Session) post(ctx context.Context, lines [][]byte) int {
	window := ss.st.opts.Window
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case ss.posting <- struct{}{}:
		defer func() { <-ss.posting }()
	case <-ss.stop:
		return lpGone
	case <-t.C:
		return lpTimeout
	case <-ctx.Done():
		return lpTimeout
	}
	if !ss.beginFeed() {
		return lpGone
	}
	defer ss.endFeed()
	for _, raw := range lines {
		if len(raw) == 0 {
			continue
		}
		if max := ss.st.opts.MaxFrameSize; int64(len(raw)) > max {
			ss.peer.Logger().LogAttrs(ss.peer.Context(), slog.LevelWarn, "longpoll line too large, closing session", slog.Int64("limit", max))
			ss.peer.Disconnect(closeTooBig, "frame too large")
			return lpTooLarge
		}
		msg, ok := ss.peer.Decode(raw)
		if !ok {
			return lpBadRequest
		}
		line := lpLine{msg: msg, done: make(chan struct{})}
		t.Reset(window)
		select {
		case ss.in <- line:
		case <-ss.stop:
			return lpGone
		case <-t.C:
			return lpTimeout
		case <-ctx.Done():
			return lpTimeout
		}
		select {
		case <-line.done:
		case <-t.C:
			return lpTimeout
		case <-ctx.Done():
			return lpTimeout
		}
	}
	return lpOK
}

// beginFeed counts a POST handing lines over and starts feed unless it
// runs; false when the session is closed.
func (ss *Session) beginFeed() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	ss.posters++
	if !ss.feeding {
		ss.feeding = true
		go ss.feed()
	}
	return true
}

// endFeed ends what beginFeed began; the last POST out tells feed it may
// end.
func (ss *Session) endFeed() {
	ss.mu.Lock()
	ss.posters--
	if ss.posters == 0 {
		select {
		case ss.feedIdle <- struct{}{}:
		default:
		}
	}
	ss.mu.Unlock()
}

// feed hands POSTed lines to the peer one at a time, while POSTs are
// being handled. It ends when the last POST is done, or finishes the
// session when it is closed meanwhile.
func (ss *Session) feed() {
	for {
		select {
		case line := <-ss.in:
			ss.peer.Deliver(line.msg)
			close(line.done)
		case <-ss.feedIdle:
			ss.mu.Lock()
			if ss.posters == 0 && !ss.closed {
				ss.feeding = false
				ss.mu.Unlock()
				return
			}
			ss.mu.Unlock()
		case <-ss.stop:
			ss.mu.Lock()
			ss.finishing = true // claimFinishLocked leaves it to feed
			ss.mu.Unlock()
			ss.finish()
			return
		}
	}
}

// finish ends a closed session: the idle timer stops, the session leaves
// the state (giving back its client's share), the Conn finishes and the
// requests served for other nodes end.
func (ss *Session) finish() {
	defer ss.st.opts.Group.Done()
	ss.mu.Lock()
	code, why := ss.closeCode, ss.closeWhy
	ss.mu.Unlock()
	ss.idle.Stop()
	ss.peer.Logger().LogAttrs(ss.peer.Context(), slog.LevelDebug, "longpoll session closed", slog.Int("code", code), slog.String("reason", why))
	ss.st.remove(ss)
	ss.peer.Finish()
	ss.wg.Wait()
}
