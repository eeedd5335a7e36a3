package wstransport

// startReader starts a goroutine that reads c (Conn.readPolled); read: its
// socket is readable. The goroutine is covered by c's count in
// Config.Group, which readPolled gives back when the connection ends.
func (s *Server) startReader(c *Conn, read bool) {
	go c.readFresh(read)
}

// readFresh is a new reader: it grows its stack first (growStack), then
// reads.
func (c *Conn) readFresh(read bool) {
	growStack(0)
	c.readPolled(read)
}

// readerStack is about what decoding and handling a message take of a
// reader's stack.
const readerStack = 6 << 10

// growStack grows a new reader's stack to hold readerStack while it is
// shallow. Otherwise the stack grows deep inside a message's decoding,
// where the runtime copies it and adjusts every frame, once or twice per
// message (in an echo loop of 1 000 clients, copystack took 15 % of the
// server's CPU); here the copy is of two frames.
//
//go:noinline
func growStack(i int) byte {
	var b [readerStack]byte
	b[i] = 1
	return lastByte(b[:]) // keeps b (and so the frame) from being optimized away
}

//go:noinline
func lastByte(b []byte) byte { return b[len(b)-1] }
