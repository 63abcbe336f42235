package benchkit

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// orderStream is the PCG stream every benchmark draws its orders from; with the seed it fixes every order.
const orderStream = 0x6d79726d6578 // "myrmex"

// Order draws the order contenders run in, a fresh random permutation every round, from one seeded generator
// (math/rand/v2's PCG), and records every order it drew. No fixed rotation: which contender runs first, or right
// after which other, changes at random from round to round, and the seed and the orders are in the results, so a
// run's orders can be checked and drawn again (-seed). A benchmark's results file holds its Order as "order".
type Order struct {
	Seed   uint64      `json:"seed"`
	Method string      `json:"method"`
	Parts  []OrderPart `json:"parts"`
	rng    *rand.Rand
}

// OrderPart is the orders drawn for one part of a benchmark (its phase, say: push, copy, pull).
type OrderPart struct {
	Part string `json:"part"`
	// Rounds holds, round by round, the contenders' keys in the order they ran.
	Rounds [][]string `json:"rounds"`
}

// NewOrder returns an Order drawing from seed; seed 0 takes one from the clock (never 0, so that a recorded seed
// always draws the same orders again).
func NewOrder(seed uint64) *Order {
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
		if seed == 0 {
			seed = 1
		}
	}
	return &Order{
		Seed:   seed,
		Method: fmt.Sprintf("math/rand/v2 PCG(seed, %#x): Perm of the contenders, drawn anew for every round", uint64(orderStream)),
		rng:    rand.New(rand.NewPCG(seed, orderStream)),
	}
}

// Rounds draws the order of every round of a part whose contenders are keys: orders[r] lists the indexes of keys
// in the order round r runs them, each index once. The draws go on from the previous call's, so a benchmark that
// asks for its parts in the same order with the same seed gets the same orders.
func (o *Order) Rounds(part string, keys []string, rounds int) [][]int {
	orders := make([][]int, rounds)
	p := OrderPart{Part: part, Rounds: make([][]string, rounds)}
	for r := range orders {
		orders[r] = o.rng.Perm(len(keys))
		p.Rounds[r] = make([]string, len(keys))
		for k, i := range orders[r] {
			p.Rounds[r][k] = keys[i]
		}
	}
	o.Parts = append(o.Parts, p)
	return orders
}

// Summary is one line for a benchmark's table on stdout.
func (o *Order) Summary() string {
	return fmt.Sprintf("order: random per round, seed %d (-seed %d draws the same orders)", o.Seed, o.Seed)
}

// Markdown is a results file's section on the order of the rounds: how it was drawn, the seed, and every round's
// order.
func (o *Order) Markdown() []string {
	out := []string{
		"## Order of the rounds",
		"",
		fmt.Sprintf("Every round runs the contenders in a random order of its own, not a fixed rotation: %s, seed **%d**. "+
			"`-seed %d` draws the same orders again.", o.Method, o.Seed, o.Seed),
		"",
		"| part | round | order |",
		"|---|---:|---|",
	}
	for _, p := range o.Parts {
		for r, keys := range p.Rounds {
			out = append(out, fmt.Sprintf("| %s | %d | %s |", p.Part, r+1, strings.Join(keys, " → ")))
		}
	}
	return append(out, "")
}
