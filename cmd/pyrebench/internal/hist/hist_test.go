package hist

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIndexAndBoundsAgree(t *testing.T) {
	vals := []uint64{0, 1, 127, 128, 129, 255, 256, 259, 260, 1000, 1 << 20, 1<<40 + 12345, math.MaxUint64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, r.Uint64()>>r.IntN(64))
	}
	for _, v := range vals {
		i := Index(v)
		require.GreaterOrEqual(t, i, 0)
		require.Less(t, i, NumBuckets, "v=%d", v)
		lo, hi := Bounds(i)
		require.LessOrEqual(t, lo, v, "v=%d bucket %d", v, i)
		require.GreaterOrEqual(t, hi, v, "v=%d bucket %d", v, i)
		if v >= sub {
			// Bucket width is at most 1/64 of its lower bound.
			assert.LessOrEqual(t, float64(hi-lo+1)/float64(lo), 1.0/64+1e-12, "v=%d", v)
		}
	}
	assert.Equal(t, NumBuckets-1, Index(math.MaxUint64))
}

func TestBucketsAreContiguous(t *testing.T) {
	_, prevHi := Bounds(0)
	for i := 1; i < NumBuckets; i++ {
		lo, hi := Bounds(i)
		require.Equal(t, prevHi+1, lo, "bucket %d", i)
		require.GreaterOrEqual(t, hi, lo)
		prevHi = hi
	}
	assert.Equal(t, uint64(math.MaxUint64), prevHi)
}

// exactQuantile is the reference: the ceil(q*n)-th smallest value.
func exactQuantile(sorted []int64, q float64) float64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = max(rank, 1)
	return float64(sorted[rank-1])
}

func TestQuantilesMatchExactWithinBucketWidth(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h H
	var vals []int64
	for range 50000 {
		// Log-normal-ish latencies from 1 µs to ~10 s in nanoseconds.
		v := int64(math.Exp(r.NormFloat64()*2 + 15))
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	s := h.Snapshot()
	require.Equal(t, uint64(len(vals)), s.Total)
	for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
		want := exactQuantile(vals, q)
		got := s.Quantile(q)
		assert.InEpsilon(t, want, got, 1.0/64, "q=%v", q)
	}
	assert.Equal(t, float64(vals[len(vals)-1]), s.Quantile(1), "p100 is the exact max")
	assert.Equal(t, uint64(vals[0]), s.Min)
}

func TestSmallValuesAreExact(t *testing.T) {
	var h H
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	s := h.Snapshot()
	assert.Equal(t, 50.0, s.Quantile(0.5))
	assert.Equal(t, 99.0, s.Quantile(0.99))
	assert.Equal(t, 100.0, s.Quantile(0.999))
	assert.Equal(t, 1.0, s.Quantile(0.001))
	assert.Equal(t, 50.5, s.Mean())
}

func TestEmptyAndNegative(t *testing.T) {
	var h H
	assert.True(t, math.IsNaN(h.Snapshot().Quantile(0.5)))
	assert.True(t, math.IsNaN(h.Snapshot().Mean()))
	h.Record(-5)
	s := h.Snapshot()
	assert.Equal(t, uint64(1), s.Negative)
	assert.Equal(t, 0.0, s.Quantile(0.5))
}

func TestMergeEqualsRecordingEverything(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var a, b, all H
	for i := range 20000 {
		v := int64(r.ExpFloat64() * 1e7)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	m := a.Snapshot().Merge(b.Snapshot())
	assert.Equal(t, all.Snapshot(), m)
	assert.Equal(t, m, m.Merge(Snapshot{}))
	assert.Equal(t, m, Snapshot{}.Merge(m))

	// Through JSON, as snapshots travel between processes.
	raw, err := json.Marshal(a.Snapshot())
	require.NoError(t, err)
	var back Snapshot
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, all.Snapshot(), back.Merge(b.Snapshot()))
}

func TestConcurrentRecord(t *testing.T) {
	var h H
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(int64(g*1000 + i))
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	assert.Equal(t, uint64(8000), s.Total)
	assert.Equal(t, uint64(0), s.Min)
	assert.Equal(t, uint64(7999), s.Max)
	assert.Equal(t, uint64(7999*8000/2), s.Sum)
}
