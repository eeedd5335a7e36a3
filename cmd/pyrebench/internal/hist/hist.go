// Package hist is a log-linear histogram for latencies: every power of two
// is split into 64 equal buckets, so a recorded value is known to within
// 1/64 (1.6 %) of itself, values below 128 exactly. Recording is lock-free
// and safe for concurrent use; a Snapshot is a plain value that merges
// across processes (it marshals to compact JSON) and answers quantiles.
package hist

import (
	"math"
	"math/bits"
	"sync/atomic"
)

const (
	subBits = 7
	sub     = 1 << subBits // values below sub have a bucket each
	half    = sub / 2      // buckets per power of two above sub
	// NumBuckets is the number of buckets covering 0 .. 2^64-1.
	NumBuckets = sub + (64-subBits)*half
)

// Index returns the bucket of v.
func Index(v uint64) int {
	if v < sub {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return sub + (shift-1)*half + int(v>>uint(shift)) - half
}

// Bounds returns the smallest and the largest value of bucket i.
func Bounds(i int) (lo, hi uint64) {
	if i < sub {
		return uint64(i), uint64(i)
	}
	j := i - sub
	shift := uint(j/half + 1)
	lo = uint64(j%half+half) << shift
	return lo, lo + (1 << shift) - 1
}

// H records values concurrently. The zero value is ready to use. Negative
// values are recorded as 0 and counted in Snapshot.Negative.
type H struct {
	counts [NumBuckets]atomic.Uint64
	total  atomic.Uint64
	neg    atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Uint64 // stored as ^v so that the zero value means "none"
	max    atomic.Uint64
}

// Record adds one value.
func (h *H) Record(v int64) {
	if v < 0 {
		h.neg.Add(1)
		v = 0
	}
	u := uint64(v)
	h.counts[Index(u)].Add(1)
	h.total.Add(1)
	h.sum.Add(u)
	for {
		m := h.max.Load()
		if u <= m || h.max.CompareAndSwap(m, u) {
			break
		}
	}
	for {
		m := h.min.Load() // ^min, 0 when empty
		if (m != 0 && u >= ^m) || h.min.CompareAndSwap(m, ^u) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *H) Count() uint64 { return h.total.Load() }

// Snapshot copies the current state. Concurrent Records may be partly
// included.
func (h *H) Snapshot() Snapshot {
	s := Snapshot{Negative: h.neg.Load(), Sum: h.sum.Load(), Max: h.max.Load()}
	if m := h.min.Load(); m != 0 {
		s.Min = ^m
	}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
			s.Total += c
		}
	}
	return s
}

// Snapshot is a histogram as data: the non-empty buckets in increasing
// order, as [index, count] pairs.
type Snapshot struct {
	Buckets  [][2]uint64 `json:"b,omitempty"`
	Total    uint64      `json:"n"`
	Negative uint64      `json:"neg,omitempty"`
	Sum      uint64      `json:"sum"`
	Min      uint64      `json:"min"`
	Max      uint64      `json:"max"`
}

// Merge returns the histogram of both snapshots' values.
func (s Snapshot) Merge(o Snapshot) Snapshot {
	if o.Total == 0 {
		return s
	}
	if s.Total == 0 {
		return o
	}
	out := Snapshot{
		Total: s.Total + o.Total, Negative: s.Negative + o.Negative, Sum: s.Sum + o.Sum,
		Min: min(s.Min, o.Min), Max: max(s.Max, o.Max),
		Buckets: make([][2]uint64, 0, len(s.Buckets)+len(o.Buckets)),
	}
	i, j := 0, 0
	for i < len(s.Buckets) || j < len(o.Buckets) {
		switch {
		case j == len(o.Buckets) || (i < len(s.Buckets) && s.Buckets[i][0] < o.Buckets[j][0]):
			out.Buckets = append(out.Buckets, s.Buckets[i])
			i++
		case i == len(s.Buckets) || o.Buckets[j][0] < s.Buckets[i][0]:
			out.Buckets = append(out.Buckets, o.Buckets[j])
			j++
		default:
			out.Buckets = append(out.Buckets, [2]uint64{s.Buckets[i][0], s.Buckets[i][1] + o.Buckets[j][1]})
			i++
			j++
		}
	}
	return out
}

// Quantile returns the value at quantile q (0 < q <= 1): the middle of the
// bucket holding the ceil(q*Total)-th smallest value, kept within
// [Min, Max]; the largest rank answers Max exactly. It returns NaN for an
// empty histogram.
func (s Snapshot) Quantile(q float64) float64 {
	if s.Total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(q * float64(s.Total)))
	rank = max(rank, 1)
	if rank >= s.Total {
		return float64(s.Max)
	}
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			lo, hi := Bounds(int(b[0]))
			lo, hi = max(lo, s.Min), min(hi, s.Max)
			return float64(lo)/2 + float64(hi)/2
		}
	}
	return float64(s.Max)
}

// Mean returns the average value, NaN for an empty histogram.
func (s Snapshot) Mean() float64 {
	if s.Total == 0 {
		return math.NaN()
	}
	return float64(s.Sum) / float64(s.Total)
}
