package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
)

// logsOptions are the flags of container logs.
type logsOptions struct {
	engine.LogOptions
	tail string
}

func newContainerLogsCmd(g *globalOptions) *cobra.Command {
	var o logsOptions
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a container's output: its stdout to stdout, its stderr to stderr",
		Long: `Print a container's output as the engine kept it. As a table (the default) the container's stdout goes
to stdout and its stderr to stderr, streamed as it arrives; -o json or yaml prints the ContainerResult, with
logs, stdout and stderr fields, once the output is read.`,
		Example: `  myrmex container logs web --tail 20
  myrmex container logs web --since 10m --stderr
  myrmex container logs web -f --tail 0`,
		Args: exactArgs(1, "one container NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.parseTail(); err != nil {
				return err
			}
			return runLogs(cmd, g, args[0], o.LogOptions)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.tail, "tail", "all", "number of lines to show from the end, or all")
	f.StringVar(&o.Since, "since", "", "show lines since a time: RFC 3339, Unix timestamp, or a duration back from now (10m)")
	f.StringVar(&o.Until, "until", "", "show lines until a time, in the forms of --since")
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "prefix each line with its time")
	f.BoolVar(&o.Stdout, "stdout", false, "show the container's stdout only (with --stderr, both)")
	f.BoolVar(&o.Stderr, "stderr", false, "show the container's stderr only (with --stdout, both)")
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing as the container writes, until it stops or Ctrl-C")
	return cmd
}

func (o *logsOptions) parseTail() error {
	if o.tail == "all" || o.tail == "" {
		return nil
	}
	n, err := strconv.Atoi(o.tail)
	if err != nil || n < 0 {
		return invalidf("--tail %q: want a number of lines or all", o.tail)
	}
	if n == 0 {
		// The library reads everything for a zero Tail; no lines from the past is "since now".
		if o.Since == "" {
			o.Since = "0s"
		}
		return nil
	}
	o.Tail = n
	return nil
}

func runLogs(cmd *cobra.Command, g *globalOptions, name string, opts engine.LogOptions) error {
	ctx := cmd.Context()
	if g.structured() {
		if opts.Follow {
			return invalidf("--follow streams the output as it comes; it cannot be combined with -o %s", g.output)
		}
		mo := g.manageOptions(nil)
		mo.Logs = opts
		res, err := g.myrmex().ManageContainers(ctx, containerization.OpLogs, name, nil, mo)
		if err != nil {
			return err
		}
		return g.encode(res)
	}
	eng, err := g.engine(ctx)
	if err != nil {
		return &containerization.ContainerManagementError{Op: containerization.OpLogs, Container: name, Err: err}
	}
	return eng.StreamLogs(ctx, name, opts, g.out, g.errOut)
}
