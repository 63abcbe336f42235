package benchkit

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// DefaultDockerHost is the private engine of `scripts/engine.sh up`.
const DefaultDockerHost = "unix:///run/myrmex-test/docker.sock"

// DockerHost is the engine address in DOCKER_HOST, or DefaultDockerHost when it is unset.
func DockerHost() string { return cmp.Or(os.Getenv("DOCKER_HOST"), DefaultDockerHost) }

// Flags are the settings every benchmark shares: the directory it writes its results to, the seed of its orders
// and whether it may write results from a dirty work tree.
type Flags struct {
	Out        string
	Seed       uint64
	AllowDirty bool
}

// RegisterFlags defines -out, -seed and -allow-dirty on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Out, "out", "bench/results", "directory for the results files; empty writes none")
	fs.Uint64Var(&f.Seed, "seed", 0, "seed of the contenders' random order in every round; 0 takes one from the clock (the seed is in the results)")
	fs.BoolVar(&f.AllowDirty, "allow-dirty", false, "write results even when the work tree differs from its commit (the results then say they are not reproducible from a commit)")
	return f
}

// Order returns the Order of the run, drawn from -seed.
func (f *Flags) Order() *Order { return NewOrder(f.Seed) }

// Source reads the code the run measures (ReadSource of the working directory, -out not counted). Results are
// only written from a commit, unless -allow-dirty: a run that would write them from a dirty work tree is refused
// now, not after the run.
func (f *Flags) Source(ctx context.Context) (Source, error) {
	src := ReadSource(ctx, ".", f.Out)
	if f.Out == "" {
		return src, nil
	}
	return src, src.Check(f.AllowDirty)
}

// Write writes a run's results to -out (WriteResults) and logs where; with an empty -out it writes nothing.
func (f *Flags) Write(name string, started time.Time, report any, markdown string) error {
	if f.Out == "" {
		return nil
	}
	md, js, err := WriteResults(f.Out, name, started, report, markdown)
	if err != nil {
		return err
	}
	Logf("wrote %s and %s", md, js)
	return nil
}

// Main runs a benchmark, bench/NAME, once its command line is parsed: run gets a context that an interrupt or
// SIGTERM cancels, and its error goes to stderr with an exit status of 1.
func Main(name string, run func(context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/"+name+":", err)
		os.Exit(1)
	}
}
