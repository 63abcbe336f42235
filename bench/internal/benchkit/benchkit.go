// Package benchkit holds what Myrmex's benchmarks share: reading the machine they ran on and summarising rounds.
package benchkit

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
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

// Floats formats xs with format, joined by sep.
func Floats(xs []float64, format, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, sep)
}

// Logf writes a timestamped progress line to stderr.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// NewRunID returns a short random id that names what one run of a benchmark makes.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteResults writes a benchmark's results to dir as NAME-DATE.json (report, indented) and NAME-DATE.md
// (markdown), and returns the two paths, markdown first.
func WriteResults(dir, name string, started time.Time, report any, markdown string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	base := filepath.Join(dir, name+"-"+started.Format("2006-01-02"))
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".md", []byte(markdown), 0o644); err != nil {
		return "", "", err
	}
	return base + ".md", base + ".json", nil
}
