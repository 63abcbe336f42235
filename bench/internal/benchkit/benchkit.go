// Package benchkit holds what Myrmex's benchmarks share: reading the machine they ran on and summarising rounds.
package benchkit

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ProcField returns the value of the first "key: value" line of a /proc file, or "" when it has none.
func ProcField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// LoadAvg returns the 1, 5 and 15-minute load averages as /proc/loadavg writes them, or "".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// Load1 reads the 1-minute figure of a LoadAvg string.
func Load1(avg string) float64 {
	var l float64
	_, _ = fmt.Sscanf(avg, "%g", &l)
	return l
}

// Median returns the median of xs, 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
