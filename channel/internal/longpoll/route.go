package longpoll

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/pyre-go/pyre/pubsub"
)

// Forwarding between nodes. A node that gets a poll or POST for a session
// another node owns publishes an lp_req to the owner's topic
// "phx:lp:<owner node id>". The owner answers on the asker's topic: first an
// lp_ack at once (known: whether it holds the session), then, when the poll
// or POST is done, an lp_res with the logical status and the messages. The
// asker gives up when no ack comes within PubSubTimeout (the owner is gone)
// or no result within the longest time the request can take; when its own
// client goes away it publishes an lp_req with op "cancel", which ends a
// held poll without taking the queued messages.

const lpTopicPrefix = "phx:lp:"

// PubSub events of the forwarding protocol.
const (
	lpEventRequest = "lp_req"
	lpEventAck     = "lp_ack"
	lpEventResult  = "lp_res"
)

// Forwarded operations.
const (
	lpOpPoll   = "poll"
	lpOpPost   = "post"
	lpOpCancel = "cancel"
)

// lpRequest is a request forwarded to the node owning a session.
type lpRequest struct {
	ID    string   `json:"id"`
	From  string   `json:"from"` // node id of the asking node
	Op    string   `json:"op"`
	SID   string   `json:"sid"`
	Lines []string `json:"lines,omitempty"`
}

// lpResponse is an ack (Known) or a result (Status, Messages).
type lpResponse struct {
	ID       string   `json:"id"`
	Known    bool     `json:"known,omitempty"`
	Status   int      `json:"status,omitempty"`
	Messages []string `json:"messages,omitempty"`
}

func (r *lpResponse) messages() [][]byte {
	out := make([][]byte, len(r.Messages))
	for i, m := range r.Messages {
		out[i] = []byte(m)
	}
	return out
}

// lpPending is a forwarded request waiting for its answers.
type lpPending struct {
	ack chan bool
	res chan *lpResponse
}

// forward sends req to the owner node and waits for its result. ok is
// false when the owner does not hold the session, does not answer within
// PubSubTimeout, or ctx ends first.
func (st *State) forward(ctx context.Context, node string, req *lpRequest) (res *lpResponse, ok bool) {
	req.ID = randomID(12)
	req.From = st.node
	p := &lpPending{ack: make(chan bool, 1), res: make(chan *lpResponse, 1)}
	st.mu.Lock()
	st.pending[req.ID] = p
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		delete(st.pending, req.ID)
		st.mu.Unlock()
	}()
	if err := st.publish(node, lpEventRequest, req); err != nil {
		st.log.LogAttrs(ctx, slog.LevelWarn, "longpoll: forwarding to the owner node failed",
			slog.String("node", node), slog.Any("error", err))
		return nil, false
	}
	t := time.NewTimer(st.opts.PubSubTimeout)
	defer t.Stop()
	select {
	case known := <-p.ack:
		if !known {
			return nil, false
		}
	case <-st.closing:
		return nil, false
	case <-t.C:
		st.log.LogAttrs(ctx, slog.LevelInfo, "longpoll: owner node did not answer; session taken as gone",
			slog.String("node", node), slog.Duration("pubsub_timeout", st.opts.PubSubTimeout))
		return nil, false
	case <-ctx.Done():
		st.cancelRemote(node, req.ID)
		return nil, false
	}
	// A POST may wait for the previous POST and then for each line.
	wait := st.opts.Window + st.opts.PubSubTimeout
	if req.Op == lpOpPost {
		wait += time.Duration(len(req.Lines)) * st.opts.Window
	}
	t.Reset(wait)
	select {
	case res := <-p.res:
		return res, true
	case <-st.closing:
		st.cancelRemote(node, req.ID)
		return nil, false
	case <-t.C:
		if req.Op == lpOpPoll {
			return &lpResponse{Status: lpNoContent}, true
		}
		return &lpResponse{Status: lpTimeout}, true
	case <-ctx.Done():
		st.cancelRemote(node, req.ID)
		return nil, false
	}
}

func (st *State) cancelRemote(node, id string) {
	_ = st.publish(node, lpEventRequest, &lpRequest{ID: id, From: st.node, Op: lpOpCancel})
}

func (st *State) publish(node, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.opts.PubSubTimeout)
	defer cancel()
	return st.ps.Broadcast(ctx, &pubsub.Message{Topic: lpTopicPrefix + node, Event: event, Payload: b})
}

// Deliver implements pubsub.Subscriber for the node topic. It never blocks:
// requests are served on goroutines counted in the session's (or, for
// unknown sessions, the owner's) WaitGroup.
func (st *State) Deliver(msg *pubsub.Message) {
	if msg.Binary {
		return
	}
	switch msg.Event {
	case lpEventRequest:
		var req lpRequest
		if json.Unmarshal(msg.Payload, &req) != nil || req.ID == "" || req.From == "" {
			return
		}
		st.serve(&req)
	case lpEventAck, lpEventResult:
		var res lpResponse
		if json.Unmarshal(msg.Payload, &res) != nil {
			return
		}
		st.mu.Lock()
		p := st.pending[res.ID]
		st.mu.Unlock()
		if p == nil {
			return
		}
		if msg.Event == lpEventAck {
			select {
			case p.ack <- res.Known:
			default:
			}
			return
		}
		select {
		case p.res <- &res:
		default:
		}
	}
}

// serve runs a request forwarded by another node.
func (st *State) serve(req *lpRequest) {
	if req.Op == lpOpCancel {
		st.mu.Lock()
		cancel := st.serving[req.ID]
		st.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		return
	}
	if req.Op != lpOpPoll && req.Op != lpOpPost {
		return
	}
	ss := st.lookup(req.SID)
	if ss == nil || !ss.acquire() {
		if !st.opts.Hold() {
			return // the asker times out, with the same outcome
		}
		go func() {
			defer st.opts.Group.Done()
			_ = st.publish(req.From, lpEventAck, &lpResponse{ID: req.ID})
		}()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.mu.Lock()
	st.serving[req.ID] = cancel
	st.mu.Unlock()
	go func() {
		defer ss.wg.Done()
		defer func() {
			st.mu.Lock()
			delete(st.serving, req.ID)
			st.mu.Unlock()
			cancel()
		}()
		if err := st.publish(req.From, lpEventAck, &lpResponse{ID: req.ID, Known: true}); err != nil {
			return
		}
		res := &lpResponse{ID: req.ID}
		if req.Op == lpOpPoll {
			status, msgs := ss.poll(ctx)
			if ctx.Err() != nil && status != lpOK {
				return // canceled: the asker is gone
			}
			res.Status = status
			res.Messages = make([]string, len(msgs))
			for i, m := range msgs {
				res.Messages[i] = string(m)
			}
		} else {
			lines := make([][]byte, len(req.Lines))
			for i, l := range req.Lines {
				lines[i] = []byte(l)
			}
			res.Status = ss.post(ctx, lines)
		}
		if err := st.publish(req.From, lpEventResult, res); err != nil {
			ss.peer.Logger().LogAttrs(ss.peer.Context(), slog.LevelWarn, "longpoll: answering a forwarded request failed",
				slog.String("node", req.From), slog.Any("error", err))
		}
	}()
}
