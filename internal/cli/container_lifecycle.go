package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
)

func newContainerStartCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME...",
		Short: "Start containers (a running one is left as it is)",
		Args:  minArgs(1, "at least one container NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			return runLifecycle(cmd, g, containerization.OpStart, names, containerization.ManageOptions{})
		},
	}
}

func newContainerStopCmd(g *globalOptions) *cobra.Command {
	return newStopLikeCmd(g, containerization.OpStop, "stop NAME...", "Stop containers (a stopped one is left as it is)")
}

func newContainerRestartCmd(g *globalOptions) *cobra.Command {
	return newStopLikeCmd(g, containerization.OpRestart, "restart NAME...", "Stop (if running) and start containers")
}

// newStopLikeCmd makes the commands that stop a container and so take a grace period.
func newStopLikeCmd(g *globalOptions, op, use, short string) *cobra.Command {
	var timeout secondsValue
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1, "at least one container NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			return runLifecycle(cmd, g, op, names, containerization.ManageOptions{StopTimeout: timeout.d})
		},
	}
	cmd.Flags().VarP(&timeout, "timeout", "t", "grace period after SIGTERM before SIGKILL: 30s, 1m, or seconds (default: the container's own, 10s unless set)")
	return cmd
}

func newContainerRmCmd(g *globalOptions) *cobra.Command {
	var o containerization.ManageOptions
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove containers",
		Args:    minArgs(1, "at least one container NAME"),
		RunE: func(cmd *cobra.Command, names []string) error {
			return runLifecycle(cmd, g, containerization.OpRemove, names, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "kill and remove a running container")
	cmd.Flags().BoolVarP(&o.RemoveVolumes, "volumes", "v", false, "also remove the container's anonymous volumes (named volumes stay)")
	return cmd
}

// runLifecycle runs op on each name in turn over the process's one client, carries on past failures, and returns
// the first failure. opts holds the operation's own options; the logger is added here.
func runLifecycle(cmd *cobra.Command, g *globalOptions, op string, names []string, opts containerization.ManageOptions) error {
	ctx := cmd.Context()
	opts.Logger = g.log

	var (
		results []*containerization.ContainerResult
		first   error
	)
	for _, name := range names {
		res, err := g.myrmex().ManageContainers(ctx, op, name, nil, opts)
		results = append(results, res)
		g.warnVerdict(res.PolicyVerdict)
		if err != nil {
			g.fail(err)
			if first == nil {
				first = err
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
	if err := printResults(g, results); err != nil {
		return err
	}
	if first != nil {
		return &reported{first}
	}
	return nil
}

// already says what an operation that changed nothing found.
var already = map[string]string{
	containerization.OpStart: "(already running)",
	containerization.OpStop:  "(already stopped)",
}

// printResults writes lifecycle results: as JSON or YAML, one object for one result and an array for several,
// failures included; as a table, a line per success (failures are on stderr).
func printResults(g *globalOptions, results []*containerization.ContainerResult) error {
	if g.structured() {
		if len(results) == 1 {
			return g.encode(results[0])
		}
		return g.encode(results)
	}
	tw := newTable(g.out)
	for _, r := range results {
		if !r.Success {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s", r.ContainerName, shortID(r.ContainerID), r.Status)
		if !r.Changed && already[r.Operation] != "" {
			fmt.Fprintf(tw, "\t%s", already[r.Operation])
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func shortID(id string) string { return id[:min(12, len(id))] }

// secondsValue is a duration flag that also takes a bare number of seconds, as docker stop -t does. Unset, it
// is nil.
type secondsValue struct{ d *time.Duration }

func (v *secondsValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v *secondsValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.Atoi(s); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or a number of seconds")
	}
	v.d = &d
	return nil
}

func (v *secondsValue) Type() string { return "duration" }
