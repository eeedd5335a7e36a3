package batcher

import "time"

// entry is a queued item with the time it was added (since Batcher.epoch).
type entry[T any] struct {
	v  T
	at time.Duration
}

// ring is a FIFO queue that grows on demand up to a limit given by the
// caller. It is not safe for concurrent use.
type ring[T any] struct {
	buf  []entry[T]
	head int
	n    int
}

// push appends e. The caller guarantees n < limit.
func (r *ring[T]) push(e entry[T], limit int) {
	if r.n == len(r.buf) {
		r.grow(limit)
	}
	r.buf[(r.head+r.n)%len(r.buf)] = e
	r.n++
}

func (r *ring[T]) grow(limit int) {
	c := min(max(2*len(r.buf), 16), limit)
	nb := make([]entry[T], c)
	for i := range r.n {
		nb[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = nb, 0
}

// front returns the oldest entry; the caller guarantees n > 0.
func (r *ring[T]) front() entry[T] {
	return r.buf[r.head]
}

// dropFront removes the oldest entry; the caller guarantees n > 0.
func (r *ring[T]) dropFront() {
	r.buf[r.head] = entry[T]{} // let the GC have the item
	r.head = (r.head + 1) % len(r.buf)
	r.n--
}

// take removes the k oldest items and returns them in a new slice.
func (r *ring[T]) take(k int) []T {
	out := make([]T, k)
	for i := range out {
		out[i] = r.buf[r.head].v
		r.dropFront()
	}
	return out
}

// clear removes every entry.
func (r *ring[T]) clear() {
	clear(r.buf)
	r.head, r.n = 0, 0
}

// release frees the buffer of an empty queue that grew beyond keep items,
// so a burst does not pin memory for the rest of the Batcher's life.
func (r *ring[T]) release(keep int) {
	if r.n == 0 && len(r.buf) > keep {
		r.buf, r.head = nil, 0
	}
}
