// Package envelope is the wire format the broker adapters put around a
// pubsub.Message: the sending node's id, the topic, the event, the sender id
// (From), a binary flag and the payload, in a compact binary layout that is
// encoded once per broadcast.
//
// Layout (version 1):
//
//	byte 0       version (1)
//	byte 1       flags: bit 0 = Binary; other bits must be 0
//	bytes 2..17  node id (16 random bytes)
//	uvarint len + bytes  topic
//	uvarint len + bytes  event
//	uvarint len + bytes  from
//	rest                 payload
package envelope

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/pyre-go/pyre/pubsub"
)

const (
	version    = 1
	flagBinary = 1 << 0
	headerLen  = 2 + len(NodeID{})
)

// ErrMalformed is returned by Decode for data that is not a valid envelope.
var ErrMalformed = errors.New("envelope: malformed")

// NodeID identifies one adapter instance (one node).
type NodeID [16]byte

// NewNodeID returns a random NodeID.
func NewNodeID() NodeID {
	var id NodeID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	return id
}

// String returns id in hex.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Size returns the encoded size of msg.
func Size(msg *pubsub.Message) int {
	return headerLen + strLen(msg.Topic) + strLen(msg.Event) + strLen(msg.From) + len(msg.Payload)
}

func strLen(s string) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(len(s))) + len(s)
}

// Append appends the envelope of msg sent by node to dst and returns the
// extended slice.
func Append(dst []byte, node NodeID, msg *pubsub.Message) []byte {
	var flags byte
	if msg.Binary {
		flags |= flagBinary
	}
	dst = append(dst, version, flags)
	dst = append(dst, node[:]...)
	dst = appendString(dst, msg.Topic)
	dst = appendString(dst, msg.Event)
	dst = appendString(dst, msg.From)
	return append(dst, msg.Payload...)
}

// Encode returns the envelope of msg sent by node in a new, exactly sized
// slice.
func Encode(node NodeID, msg *pubsub.Message) []byte {
	return Append(make([]byte, 0, Size(msg)), node, msg)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Decode parses an envelope. The returned message's Payload aliases data,
// which the caller must not modify afterwards.
func Decode(data []byte) (NodeID, *pubsub.Message, error) {
	var node NodeID
	if len(data) < headerLen {
		return node, nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(data))
	}
	if data[0] != version {
		return node, nil, fmt.Errorf("%w: version %d", ErrMalformed, data[0])
	}
	flags := data[1]
	if flags&^flagBinary != 0 {
		return node, nil, fmt.Errorf("%w: flags %#x", ErrMalformed, flags)
	}
	copy(node[:], data[2:headerLen])
	rest := data[headerLen:]
	var fields [3]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return node, nil, fmt.Errorf("%w: bad length of field %d", ErrMalformed, i)
		}
		fields[i] = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if fields[0] == "" {
		return node, nil, fmt.Errorf("%w: empty topic", ErrMalformed)
	}
	msg := &pubsub.Message{
		Topic:   fields[0],
		Event:   fields[1],
		From:    fields[2],
		Binary:  flags&flagBinary != 0,
		Payload: rest[:len(rest):len(rest)],
	}
	return node, msg, nil
}
