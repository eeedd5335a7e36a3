package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pyre-go/pyre/cmd/pyrebench/internal/hist"
	"github.com/pyre-go/pyre/cmd/pyrebench/internal/wsc"
)

// A worker is one client process ("pyrebench client"): it holds up to a few
// thousand connections, one goroutine and one read buffer each, and
// answers the coordinator's commands, one JSON line in, one JSON line out,
// on stdin/stdout. It exits when stdin closes.

// workerConfig is what the coordinator passes to a worker (flag -config).
type workerConfig struct {
	ID              int           `json:"id"`
	URL             string        `json:"url"` // ws://host/socket/websocket?vsn=2.0.0
	Topic           string        `json:"topic"`
	N               int           `json:"n"`
	Stalled         int           `json:"stalled"`            // the first Stalled connections stop reading after the join
	Filtered        int           `json:"filtered,omitempty"` // the last Filtered connections join with filterJoinPayload (phoenix; Stalled+Filtered <= N)
	Src             []string      `json:"src"`                // source addresses, used round robin
	DialConcurrency int           `json:"dial_concurrency"`
	ConnTimeout     time.Duration `json:"conn_timeout"`    // dial + upgrade + join of one connection
	ConnectTimeout  time.Duration `json:"connect_timeout"` // the whole connect phase
	Heartbeat       time.Duration `json:"heartbeat"`
	ReadBuf         int           `json:"read_buf"`
	StallRcvBuf     int           `json:"stall_rcvbuf"`
	MaxFail         int           `json:"max_fail"`              // stop dialing after this many failures
	CPUProfile      string        `json:"cpu_profile,omitempty"` // write a CPU profile of this process here
	IO              string        `json:"io"`                    // "epoll" (Linux) or "goroutine": how joined connections are read
	Deflate         bool          `json:"deflate,omitempty"`     // offer permessage-deflate (the client cannot inflate)
	Proto           string        `json:"proto,omitempty"`       // "phoenix" (default) or "centrifuge"
	// Poll, when > 0, keeps the epoll pollers from ever blocking in
	// epoll_wait: a poll that finds nothing sleeps Poll and polls again, so
	// the server's sends never have to wake a client thread.
	Poll time.Duration `json:"poll,omitempty"`
	// Arrival, on the epoll read path (Linux), has the kernel stamp each
	// read with the time its data reached the socket (SO_TIMESTAMPNS), and
	// records latency at arrival too (LatArr): the server's share of the
	// latency, without the time the data waited for this client to read it.
	// A read's stamp is that of the last segment it took, so an earlier
	// frame of the same read is charged a little late, never early.
	Arrival bool `json:"arrival,omitempty"`
	// NoRing makes the epoll pollers read each ready connection with its
	// own read(2) instead of batching the reads of one epoll_wait through
	// io_uring (Linux; used by default where the kernel allows it).
	NoRing bool `json:"no_ring,omitempty"`
}

const maxMessage = 1 << 20

// The client protocols a worker speaks.
const (
	protoPhoenix    = "phoenix"    // Phoenix V2 JSON (pyre)
	protoCentrifuge = "centrifuge" // centrifuge client protocol v2 JSON (the anchor)
)

// command is a request from the coordinator.
type command struct {
	Cmd     string `json:"cmd"` // stat | rpc | resume | report | quit
	Seconds int    `json:"seconds,omitempty"`
}

// workerStat is a worker's answer; the first line it prints (ev "ready")
// has the same shape.
type workerStat struct {
	Ev            string           `json:"ev"`
	ID            int              `json:"id"`
	PID           int              `json:"pid"`
	Ready         int64            `json:"ready"`
	Failed        int64            `json:"failed"`
	NotTried      int64            `json:"not_tried"`
	Dropped       int64            `json:"dropped"`
	ConnectS      float64          `json:"connect_s"`
	Delivered     int64            `json:"delivered"`
	LastNs        int64            `json:"last_ns"`
	RPCDone       int64            `json:"rpc_done"`
	RPCErrors     int64            `json:"rpc_errors"`
	RPCInFlight   int64            `json:"rpc_in_flight"`
	HBSent        int64            `json:"hb_sent"`
	HBMissed      int64            `json:"hb_missed"`
	ChanEvents    int64            `json:"chan_events"`
	Other         int64            `json:"other"`
	StalledLive   int64            `json:"stalled_live"`
	ReadyFiltered int64            `json:"ready_filtered,omitempty"` // joined with filterJoinPayload
	FilterLeaks   int64            `json:"filter_leaks,omitempty"`   // broadcasts those got whose event was not filterEvent
	Drained       int64            `json:"drained"`
	Errors        map[string]int64 `json:"errors,omitempty"` // connect failures by class
	Drops         map[string]int64 `json:"drops,omitempty"`  // fast connections lost after the join, by class
	StalledEnds   map[string]int64 `json:"stalled_ends,omitempty"`
	FirstErr      string           `json:"first_error,omitempty"`
	CPUUserS      float64          `json:"cpu_user_s"`
	CPUSysS       float64          `json:"cpu_sys_s"`
	RSSKB         int64            `json:"rss_kb"`
	Lat           *hist.Snapshot   `json:"lat,omitempty"`
	LatArr        *hist.Snapshot   `json:"lat_arr,omitempty"` // at arrival (workerConfig.Arrival)
	RTT           *hist.Snapshot   `json:"rtt,omitempty"`
	Err           string           `json:"err,omitempty"`
}

type worker struct {
	cfg        workerConfig
	addr       string // host:port to dial
	host       string // Host header
	requestURI string
	topicJSON  []byte
	joinFrame  []byte
	joinFilter []byte // join frame of the filtering connections

	conns []*wconn
	sem   chan struct{}
	quit  chan struct{}
	// resume is closed when stalled connections may read again.
	resume   chan struct{}
	resumeMu sync.Once
	wg       sync.WaitGroup // connection goroutines, the dialer, heartbeats
	pollers  []*poller      // nil: every connection is read by its goroutine
	pollWG   sync.WaitGroup // pollers

	lat, rtt hist.H
	latArr   hist.H // latency at the socket's arrival stamp (cfg.Arrival)

	started, ready, failed, dropped     atomic.Int64
	rpcDone, rpcErrors                  atomic.Int64
	hbSent, hbMissed, chanEvents, other atomic.Int64
	stalledLive, drained                atomic.Int64
	readyFiltered, filterLeaks          atomic.Int64
	rpcUntil                            atomic.Int64 // unix nanos; 0 when no rpc run
	t0                                  time.Time
	lastReady                           atomic.Int64
	dialDone                            chan struct{}
	stateCh                             chan struct{}
	closing                             atomic.Bool
	mu                                  sync.Mutex // guards the maps below and wconn.nc
	errs, drops, stalledEnds            map[string]int64
	firstErr                            string
}

// wconn is one connection; its goroutine (runConn) owns it.
type wconn struct {
	w        *worker
	id       int
	stalled  bool
	filtered bool     // joins with filterJoinPayload
	nc       net.Conn // set under w.mu
	ws       *wsc.Conn

	ref       atomic.Int64 // Phoenix message ref counter (join is 1)
	hbPending atomic.Int64 // ref of the unanswered heartbeat, 0 if none
	joined    atomic.Bool  // ws is set and the join was answered ok
	done      atomic.Bool  // the read loop ended
	polled    atomic.Bool  // handed over to a poller (the fields below are its)

	fd      int
	rbuf    []byte
	rlen    int
	frag    []byte
	arrival int64 // unix nanos the kernel stamped on the read being consumed; 0 if none

	delivered atomic.Int64
	lastRecv  atomic.Int64
	rpcRef    atomic.Int64 // ref of the echo in flight, 0 if none
	rpcSent   atomic.Int64
}

func newWorker(cfg workerConfig) (*worker, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := checkLoopbackHost(u.Hostname()); err != nil {
		return nil, err
	}
	if cfg.Proto != "" && cfg.Proto != protoPhoenix && cfg.Proto != protoCentrifuge {
		return nil, fmt.Errorf("bad worker config: unknown protocol %q", cfg.Proto)
	}
	if cfg.N < 1 || cfg.Stalled < 0 || cfg.Filtered < 0 || cfg.Stalled+cfg.Filtered > cfg.N || len(cfg.Src) == 0 {
		return nil, errors.New("bad worker config: need n >= 1, 0 <= stalled, 0 <= filtered, stalled + filtered <= n, source addresses")
	}
	if cfg.Filtered > 0 && cfg.Proto == protoCentrifuge {
		return nil, errors.New("bad worker config: filtered connections need the phoenix protocol")
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	topicJSON, _ := json.Marshal(cfg.Topic)
	w := &worker{
		cfg:         cfg,
		addr:        net.JoinHostPort(u.Hostname(), port),
		host:        u.Host,
		requestURI:  u.RequestURI(),
		topicJSON:   topicJSON,
		joinFrame:   appendJoin(nil, topicJSON),
		joinFilter:  appendJoinWith(nil, topicJSON, filterJoinPayload),
		conns:       make([]*wconn, cfg.N),
		sem:         make(chan struct{}, max(cfg.DialConcurrency, 1)),
		quit:        make(chan struct{}),
		resume:      make(chan struct{}),
		dialDone:    make(chan struct{}),
		stateCh:     make(chan struct{}, 1),
		errs:        map[string]int64{},
		drops:       map[string]int64{},
		stalledEnds: map[string]int64{},
	}
	for i := range w.conns {
		w.conns[i] = &wconn{w: w, id: i, stalled: i < cfg.Stalled, filtered: i >= cfg.N-cfg.Filtered}
	}
	return w, nil
}

// runWorker is the client mode: connect, report "ready", then serve
// commands from in until "quit" or EOF.
func runWorker(cfg workerConfig, in io.Reader, out io.Writer) error {
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	enc := json.NewEncoder(out)
	w.connectAll()
	if err := enc.Encode(w.stat("ready", false)); err != nil {
		w.shutdown()
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var c command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			_ = enc.Encode(workerStat{Ev: "error", Err: err.Error()})
			continue
		}
		var res workerStat
		switch c.Cmd {
		case "stat":
			res = w.stat("stat", false)
		case "rpc":
			w.startRPC(time.Duration(c.Seconds) * time.Second)
			res = w.stat("rpc", false)
		case "resume":
			w.resumeMu.Do(func() { close(w.resume) })
			res = w.stat("resume", false)
		case "report":
			res = w.stat("report", true)
		case "quit":
			w.shutdown()
			return enc.Encode(w.stat("bye", false))
		default:
			res = workerStat{Ev: "error", Err: "unknown command " + strconv.Quote(c.Cmd)}
		}
		if err := enc.Encode(res); err != nil {
			break
		}
	}
	w.shutdown()
	return sc.Err()
}

func (w *worker) notify() {
	select {
	case w.stateCh <- struct{}{}:
	default:
	}
}

// connectAll dials every connection, at most DialConcurrency in their
// handshake at once, and returns when each is joined or failed, when
// MaxFail failures stopped the dialing, or when ConnectTimeout passed.
func (w *worker) connectAll() {
	w.t0 = time.Now()
	if w.cfg.IO == "epoll" {
		if err := w.startPollers(runtime.GOMAXPROCS(0)); err != nil {
			w.noteErr(w.errs, "epoll unavailable, reading per goroutine", err)
			w.pollers = nil
		}
	}
	if w.cfg.Heartbeat > 0 && w.cfg.Proto != protoCentrifuge { // centrifuge's server pings instead
		w.wg.Add(1)
		go w.heartbeats()
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(w.dialDone)
		for _, c := range w.conns {
			select {
			case w.sem <- struct{}{}:
			case <-w.quit:
				return
			}
			if w.cfg.MaxFail > 0 && w.failed.Load() >= int64(w.cfg.MaxFail) {
				<-w.sem
				return
			}
			w.started.Add(1)
			w.wg.Add(1)
			go w.runConn(c)
		}
	}()
	deadline := time.NewTimer(w.cfg.ConnectTimeout)
	defer deadline.Stop()
	for {
		dialing := true
		select {
		case <-w.dialDone:
			dialing = false
		default:
		}
		if !dialing && w.ready.Load()+w.failed.Load() >= w.started.Load() {
			return
		}
		select {
		case <-w.stateCh:
		case <-w.dialDone:
		case <-deadline.C:
			w.noteErr(w.errs, "connect phase timeout", fmt.Errorf("connect phase over %v", w.cfg.ConnectTimeout))
			return
		}
	}
}

func (w *worker) noteErr(m map[string]int64, class string, err error) {
	w.mu.Lock()
	m[class]++
	if w.firstErr == "" && err != nil {
		s := err.Error()
		if len(s) > 300 {
			s = s[:300]
		}
		w.firstErr = s
	}
	w.mu.Unlock()
}

// errClass names the cause of a failure for the "stopped by" verdict.
func errClass(err error) string {
	var ce *wsc.CloseError
	var he *wsc.HandshakeError
	switch {
	case errors.As(err, &ce):
		return "close " + strconv.Itoa(ce.Code)
	case errors.As(err, &he):
		return "http " + strconv.Itoa(he.Status)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "EADDRNOTAVAIL (ports)"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "EMFILE (client fds)"
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM):
		return "ENOBUFS/ENOMEM"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "ECONNREFUSED"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, wsc.ErrProtocol), errors.Is(err, wsc.ErrBadHandshake), errors.Is(err, wsc.ErrTooLarge):
		return "protocol"
	case errors.Is(err, errJoinRefused):
		return "join refused"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

var errJoinRefused = errors.New("join refused")

func (w *worker) runConn(c *wconn) {
	defer w.wg.Done()
	released := false
	release := func() {
		if !released {
			released = true
			<-w.sem
		}
	}
	defer release()
	fail := func(err error) {
		w.failed.Add(1)
		w.noteErr(w.errs, errClass(err), err)
		release()
		w.notify()
	}
	rcvbuf := 0
	if c.stalled {
		rcvbuf = w.cfg.StallRcvBuf
	}
	src := w.cfg.Src[c.id%len(w.cfg.Src)]
	d := net.Dialer{
		Timeout:   w.cfg.ConnTimeout,
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)},
		Control:   dialControl(rcvbuf),
	}
	nc, err := d.Dial("tcp", w.addr)
	if err != nil {
		fail(err)
		return
	}
	w.mu.Lock()
	c.nc = nc
	w.mu.Unlock()
	keep := false
	defer func() {
		if !keep {
			nc.Close()
		}
	}()
	if w.closing.Load() {
		fail(net.ErrClosed)
		return
	}
	_ = nc.SetDeadline(time.Now().Add(w.cfg.ConnTimeout))
	ws, err := wsc.HandshakeWith(nc, w.host, w.requestURI, w.cfg.ReadBuf, maxMessage, w.cfg.Deflate)
	if err != nil {
		fail(err)
		return
	}
	c.ws = ws
	c.ref.Store(1)
	if w.cfg.Proto == protoCentrifuge {
		if err := w.centJoin(ws); err != nil {
			fail(err)
			return
		}
	} else if err := w.phxJoin(ws, c.filtered); err != nil {
		fail(err)
		return
	}
	now := time.Now()
	if c.stalled {
		w.stalledLive.Add(1)
	}
	if c.filtered {
		w.readyFiltered.Add(1)
	}
	c.joined.Store(true)
	w.ready.Add(1)
	w.lastReady.Store(now.UnixNano())
	release()
	w.notify()
	if c.stalled {
		select {
		case <-w.resume:
		case <-w.quit:
			c.done.Store(true)
			return
		}
	}
	if w.pollers != nil {
		if err := w.handOver(c); err == nil {
			keep = true // the poller owns the connection now
			return
		}
	}
	w.connEnded(c, w.readLoop(c))
}

// phxJoin joins the Phoenix topic on a fresh connection, with
// filterJoinPayload when filtered.
func (w *worker) phxJoin(ws *wsc.Conn, filtered bool) error {
	frame := w.joinFrame
	if filtered {
		frame = w.joinFilter
	}
	if err := ws.WriteMessage(wsc.OpText, frame); err != nil {
		return err
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		kind, ref, ok := classify(msg, w.topicJSON)
		if kind == kindReply && ref == 1 {
			if !ok {
				return fmt.Errorf("%w: %.200s", errJoinRefused, msg)
			}
			return nil
		}
	}
}

// heartbeats sends every joined connection a Phoenix heartbeat once per
// Heartbeat interval, as phoenix.js does, from one goroutine: the interval
// is cut into 100 ms slots and connection i beats in slot i mod slots, so
// the beats are spread evenly. A heartbeat still unanswered when the next
// one is due is counted as missed (phoenix.js would reconnect).
func (w *worker) heartbeats() {
	defer w.wg.Done()
	const slot = 100 * time.Millisecond
	slots := max(int(w.cfg.Heartbeat/slot), 1)
	tick := time.NewTicker(w.cfg.Heartbeat / time.Duration(slots))
	defer tick.Stop()
	var buf [64]byte
	for n := 0; ; n++ {
		select {
		case <-tick.C:
		case <-w.quit:
			return
		}
		for i := n % slots; i < len(w.conns); i += slots {
			c := w.conns[i]
			if !c.joined.Load() || c.done.Load() {
				continue
			}
			if c.hbPending.Load() != 0 {
				w.hbMissed.Add(1)
			}
			ref := c.ref.Add(1)
			c.hbPending.Store(ref)
			if c.ws.WriteMessage(wsc.OpText, appendHeartbeat(buf[:0], ref)) == nil {
				w.hbSent.Add(1)
			}
		}
	}
}

func (w *worker) readLoop(c *wconn) error {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		if err := w.handleMessage(c, msg); err != nil {
			return err
		}
	}
}

// handleMessage accounts for one inbound text message of a joined
// connection: a broadcast (latency from its ts), a heartbeat reply, an echo
// reply (round trip; the next echo goes out while the rpc run lasts).
func (w *worker) handleMessage(c *wconn, msg []byte) error {
	if w.cfg.Proto == protoCentrifuge {
		return w.handleCent(c, msg)
	}
	kind, ref, ok := classify(msg, w.topicJSON)
	switch kind {
	case kindPush:
		ts, hasTS := tsOf(msg)
		if !hasTS {
			w.other.Add(1)
			return nil
		}
		if c.stalled {
			w.drained.Add(1)
			return nil
		}
		if c.filtered && !pushEventIs(msg, w.topicJSON, filterEvent) {
			w.filterLeaks.Add(1)
		}
		now := time.Now().UnixNano()
		w.lat.Record(now - ts)
		if c.arrival > 0 {
			w.latArr.Record(c.arrival - ts)
		}
		c.delivered.Add(1)
		c.lastRecv.Store(now)
	case kindHBReply:
		if ref == c.hbPending.Load() {
			c.hbPending.Store(0)
		}
	case kindReply:
		if ref != 0 && ref == c.rpcRef.Load() {
			now := time.Now().UnixNano()
			if ok {
				w.rtt.Record(now - c.rpcSent.Load())
				w.rpcDone.Add(1)
			} else {
				w.rpcErrors.Add(1)
			}
			if now < w.rpcUntil.Load() {
				return c.sendEcho() // replaces rpcRef: the loop never looks idle
			}
			c.rpcRef.Store(0) // counted above first, so "none in flight" means final counts
		}
	case kindChanEvent:
		w.chanEvents.Add(1)
	default:
		w.other.Add(1)
	}
	return nil
}

// connEnded records how a joined connection ended (err from its reader).
func (w *worker) connEnded(c *wconn, err error) {
	c.done.Store(true)
	if c.stalled {
		// The end is noted before the live count drops, so that a stat that
		// sees no stalled connection left also sees how each ended.
		if !w.closing.Load() {
			w.noteErr(w.stalledEnds, errClass(err), nil)
		}
		w.stalledLive.Add(-1)
		return
	}
	if w.closing.Load() {
		return
	}
	class := errClass(err)
	w.dropped.Add(1)
	w.noteErr(w.drops, class, err)
}

func (c *wconn) sendEcho() error {
	ref := c.ref.Add(1)
	now := time.Now().UnixNano()
	c.rpcSent.Store(now)
	c.rpcRef.Store(ref)
	var buf [128]byte
	return c.ws.WriteMessage(wsc.OpText, appendEcho(buf[:0], c.w.topicJSON, ref, now))
}

// startRPC starts the echo loop on every joined fast connection; each loop
// sends its next echo when the reply arrives, until d has passed.
func (w *worker) startRPC(d time.Duration) {
	w.rpcUntil.Store(time.Now().Add(d).UnixNano())
	for _, c := range w.conns {
		if c.joined.Load() && !c.done.Load() && !c.stalled && c.rpcRef.Load() == 0 {
			_ = c.sendEcho()
		}
	}
}

func (w *worker) stat(ev string, full bool) workerStat {
	// In-flight echoes are counted before rpcDone is read: a reply counts
	// itself before it clears rpcRef, so a snapshot with none in flight has
	// the final count.
	var inFlight int64
	for _, c := range w.conns {
		if c.rpcRef.Load() != 0 {
			inFlight++
		}
	}
	s := workerStat{
		Ev: ev, ID: w.cfg.ID, PID: os.Getpid(),
		Ready: w.ready.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(),
		NotTried: int64(w.cfg.N) - w.started.Load(),
		RPCDone:  w.rpcDone.Load(), RPCErrors: w.rpcErrors.Load(),
		HBSent: w.hbSent.Load(), HBMissed: w.hbMissed.Load(),
		ChanEvents: w.chanEvents.Load(), Other: w.other.Load(),
		StalledLive: w.stalledLive.Load(), Drained: w.drained.Load(),
		ReadyFiltered: w.readyFiltered.Load(), FilterLeaks: w.filterLeaks.Load(),
		RSSKB: procStatusKB("self", "VmRSS"),
	}
	if lr := w.lastReady.Load(); lr > 0 {
		s.ConnectS = float64(lr-w.t0.UnixNano()) / 1e9
	}
	s.CPUUserS, s.CPUSysS = procCPU("self")
	for _, c := range w.conns {
		s.Delivered += c.delivered.Load()
		s.LastNs = max(s.LastNs, c.lastRecv.Load())
	}
	s.RPCInFlight = inFlight
	w.mu.Lock()
	s.Errors, s.Drops, s.StalledEnds = maps.Clone(w.errs), maps.Clone(w.drops), maps.Clone(w.stalledEnds)
	s.FirstErr = w.firstErr
	w.mu.Unlock()
	if full {
		lat, rtt := w.lat.Snapshot(), w.rtt.Snapshot()
		s.Lat, s.RTT = &lat, &rtt
		if w.cfg.Arrival {
			arr := w.latArr.Snapshot()
			s.LatArr = &arr
		}
	}
	return s
}

// shutdown closes every connection and waits for their goroutines.
func (w *worker) shutdown() {
	if w.closing.Swap(true) {
		return
	}
	close(w.quit)
	w.pollWG.Wait() // no poller reads a descriptor closed below
	w.mu.Lock()
	for _, c := range w.conns {
		switch {
		case c.polled.Load():
			_ = c.ws.Close()
		case c.nc != nil:
			_ = c.nc.Close()
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// sortedKeys returns m's keys, most frequent first.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
