package batcher

// Running reports whether the Batcher's goroutine is alive (tests only).
func (b *Batcher[T]) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running
}
