package main

import (
	"slices"
	"testing"
	"time"
)

// The benchmark itself is not a test (it runs with make bench-serve); these check its arithmetic and its flags.

func TestSummarizeNearestRank(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	// 1..100 shuffled: p50 is the 50th value, p99 the 99th.
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = (i*37)%100 + 1
	}
	for _, tc := range []struct {
		in                   []time.Duration
		p50, p99, mean, maxv float64
	}{
		{ms(hundred...), 50, 99, 50.5, 100},
		{ms(7), 7, 7, 7, 7},
		{ms(4, 1, 3, 2), 2, 4, 2.5, 4},
		{ms(10, 20, 30), 20, 30, 20, 30},
	} {
		got := summarize(tc.in)
		if got.Calls != len(tc.in) || got.P50Ms != tc.p50 || got.P99Ms != tc.p99 || got.MeanMs != tc.mean || got.MaxMs != tc.maxv {
			t.Errorf("summarize(%v) = %+v, want p50 %v p99 %v mean %v max %v", tc.in, got, tc.p50, tc.p99, tc.mean, tc.maxv)
		}
	}
	if got := summarize(nil); got != (latencies{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
	in := ms(3, 1, 2)
	summarize(in)
	if !slices.Equal(in, ms(3, 1, 2)) {
		t.Errorf("summarize sorted its argument: %v", in)
	}
}

func TestParseMix(t *testing.T) {
	got, err := parseMix(defaultMix)
	if err != nil || len(got) != 5 {
		t.Fatalf("parseMix(%q) = %v, %v", defaultMix, got, err)
	}
	if got[1].Name != "metrics" || got[1].Weight != 1 {
		t.Errorf("parseMix(%q)[1] = %+v, want metrics=1", defaultMix, got[1])
	}
	if got, err := parseMix(" health=1 "); err != nil || len(got) != 1 || got[0].Name != "health" {
		t.Errorf("parseMix(health=1) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "inspect", "inspect=0", "inspect=-1", "inspect=1001", "inspect=x", "logs=1", "health=1,health=2", "health=1,"} {
		if got, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) = %v, want an error", bad, got)
		}
	}
}
