package optimize

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// DefaultMeasureRounds is how many times Measure times each image.
const DefaultMeasureRounds = 3

// Measure is how the performance type times an image on its way to a running container: pushed from the engine
// to a registry, pulled back, started until the probe answers.
type Measure struct {
	// Repository is where the measured images are pushed ("registry.example.com/team/app-bench"): each push gets a
	// tag of its own.
	Repository string
	// Push copies an engine image to a registry reference; Pull reads a registry reference back whole (every
	// layer downloaded and decompressed). The facade gives them its registry client.
	Push func(ctx context.Context, engineRef, registryRef string) error
	Pull func(ctx context.Context, registryRef string) error
	// Delete, when set, removes a measured tag from the registry afterwards (best effort).
	Delete func(ctx context.Context, registryRef string) error
	// Rounds is how many times each image is timed; zero means DefaultMeasureRounds.
	Rounds int
}

// Performance is what Measure saw: each image's times, and the share of the total the optimized image saves.
type Performance struct {
	Rounds    int    `json:"rounds"`
	Original  Timing `json:"original"`
	Optimized Timing `json:"optimized"`
	// Improvement is the percentage of the original's median total (push + pull + start) that the optimized
	// image saves; negative when it is slower.
	Improvement float64 `json:"improvement_percent"`
	// Order is the order the rounds ran in (original "o", optimized "n"), drawn at random per round.
	Order []string `json:"order"`
	Note  string   `json:"note"`
}

// Timing is one image's times, in seconds, round by round, and the medians.
type Timing struct {
	Push        []float64 `json:"push_seconds"`
	Pull        []float64 `json:"pull_seconds"`
	Start       []float64 `json:"start_seconds"`
	MedianTotal float64   `json:"median_total_seconds"`
}

// measure times the original and the optimized image the same number of times, in a random order per round.
func (o *Optimizer) measure(ctx context.Context, req Request, probe Probe) (*Performance, error) {
	m := req.Measure
	rounds := m.Rounds
	if rounds <= 0 {
		rounds = DefaultMeasureRounds
	}
	perf := &Performance{Rounds: rounds,
		Note: "pull is download and decompression of every layer; the engine's unpacking is left out because the original's layers are already in it"}
	images := []struct {
		ref, key string
		t        *Timing
	}{{req.Source, "o", &perf.Original}, {req.Target, "n", &perf.Optimized}}
	for r := 0; r < rounds; r++ {
		order := []int{0, 1}
		if rand.IntN(2) == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			im := images[i]
			perf.Order = append(perf.Order, im.key)
			dst := m.Repository + ":myrmex-measure-" + im.key + "-" + strconv.Itoa(r) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
			if m.Delete != nil { // a push that failed part-way may have left the tag too
				defer func() { _ = m.Delete(context.WithoutCancel(ctx), dst) }()
			}
			start := time.Now()
			if err := m.Push(ctx, im.ref, dst); err != nil {
				return nil, fmt.Errorf("pushing %s to %s: %w", im.ref, dst, err)
			}
			im.t.Push = append(im.t.Push, time.Since(start).Seconds())
			start = time.Now()
			if err := m.Pull(ctx, dst); err != nil {
				return nil, fmt.Errorf("pulling %s: %w", dst, err)
			}
			im.t.Pull = append(im.t.Pull, time.Since(start).Seconds())
			pr, err := o.Prober.Check(ctx, im.ref, probe)
			if err != nil {
				return nil, err
			}
			if !pr.Passed {
				return nil, fmt.Errorf("%w: while measuring, the probe failed on %s: %s", ErrVerification, im.ref, pr.Failure)
			}
			im.t.Start = append(im.t.Start, pr.Duration)
		}
	}
	for _, im := range images {
		totals := make([]float64, rounds)
		for r := range totals {
			totals[r] = im.t.Push[r] + im.t.Pull[r] + im.t.Start[r]
		}
		im.t.MedianTotal = median(totals)
	}
	if perf.Original.MedianTotal > 0 {
		perf.Improvement = 100 * (perf.Original.MedianTotal - perf.Optimized.MedianTotal) / perf.Original.MedianTotal
	}
	return perf, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
