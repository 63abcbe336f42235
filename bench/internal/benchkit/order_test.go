package benchkit

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestOrderSameSeedSameOrders(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e"}
	draw := func(seed uint64) (*Order, [][]int, [][]int) {
		o := NewOrder(seed)
		return o, o.Rounds("one", keys, 7), o.Rounds("two", keys[:3], 4)
	}
	o1, a1, b1 := draw(42)
	o2, a2, b2 := draw(42)
	if !reflect.DeepEqual(a1, a2) || !reflect.DeepEqual(b1, b2) || !reflect.DeepEqual(o1.Parts, o2.Parts) {
		t.Fatalf("seed 42 drew different orders: %v %v / %v %v", a1, b1, a2, b2)
	}
	_, a3, _ := draw(43)
	if reflect.DeepEqual(a1, a3) {
		t.Errorf("seeds 42 and 43 drew the same orders %v", a1)
	}
	if o1.Seed != 42 {
		t.Errorf("seed recorded as %d, want 42", o1.Seed)
	}
}

func TestOrderRoundsArePermutations(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		for _, n := range []int{1, 2, 4, 5, 6} {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("k%d", i)
			}
			o := NewOrder(seed)
			orders := o.Rounds("p", keys, 5)
			if len(orders) != 5 || len(o.Parts) != 1 || len(o.Parts[0].Rounds) != 5 {
				t.Fatalf("seed %d n %d: %d rounds, parts %+v", seed, n, len(orders), o.Parts)
			}
			for r, order := range orders {
				got := slices.Sorted(slices.Values(order))
				for i := range n {
					if got[i] != i {
						t.Fatalf("seed %d n %d round %d: %v is not a permutation of 0..%d", seed, n, r, order, n-1)
					}
				}
				for k, i := range order {
					if o.Parts[0].Rounds[r][k] != keys[i] {
						t.Fatalf("seed %d round %d: recorded %v for order %v", seed, r, o.Parts[0].Rounds[r], order)
					}
				}
			}
		}
	}
}

func TestOrderRoundsDiffer(t *testing.T) {
	keys := []string{"myrmex", "cli-seq", "cli-xargs", "raw-api"}
	// With 4 contenders (24 orders) and 5 rounds, all five the same has probability 24^-4: no seed of these may
	// draw it, and the first contender must change across the rounds for nearly every seed.
	firstFixed := 0
	firsts := make([]int, len(keys))
	const seeds = 1000
	for seed := uint64(1); seed <= seeds; seed++ {
		orders := NewOrder(seed).Rounds("lifecycle", keys, 5)
		same := true
		for _, o := range orders[1:] {
			same = same && slices.Equal(o, orders[0])
		}
		if same {
			t.Errorf("seed %d: every round in the order %v", seed, orders[0])
		}
		fixed := true
		for _, o := range orders {
			fixed = fixed && o[0] == orders[0][0]
			firsts[o[0]]++
		}
		if fixed {
			firstFixed++
		}
	}
	// P(the same contender first in all 5 rounds) = 4^-4, about 4 in 1000.
	if firstFixed > 20 {
		t.Errorf("%d of %d seeds ran the same contender first in every round", firstFixed, seeds)
	}
	// Each contender runs first in about a quarter of the 5000 rounds.
	for i, n := range firsts {
		if n < 1000 || n > 1500 {
			t.Errorf("%s first in %d of %d rounds, want about %d", keys[i], n, 5*seeds, 5*seeds/len(keys))
		}
	}
}

func TestOrderClockSeedAndRecord(t *testing.T) {
	o := NewOrder(0)
	if o.Seed == 0 {
		t.Fatal("seed 0 was not replaced by one from the clock")
	}
	want := NewOrder(o.Seed).Rounds("x", []string{"a", "b", "c"}, 3)
	if got := o.Rounds("x", []string{"a", "b", "c"}, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("the recorded seed %d draws %v, the run drew %v", o.Seed, want, got)
	}
	js, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), fmt.Sprintf(`"seed":%d`, o.Seed)) || !strings.Contains(string(js), `"part":"x"`) {
		t.Errorf("JSON %s", js)
	}
	md := strings.Join(o.Markdown(), "\n")
	if !strings.Contains(md, fmt.Sprintf("seed **%d**", o.Seed)) || !strings.Contains(md, fmt.Sprintf("`-seed %d`", o.Seed)) ||
		!strings.Contains(md, "| x | 3 | ") {
		t.Errorf("markdown:\n%s", md)
	}
}
