package cli

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/kube"
)

// kubeFlags are the group's persistent flags: the cluster and the namespace every kube command works in.
type kubeFlags struct {
	g          *globalOptions
	kubeconfig string
	context    string
	namespace  string
}

func newKubeCmd(g *globalOptions) *cobra.Command {
	f := &kubeFlags{g: g}
	cmd := group("kube", "Apply manifests to a Kubernetes cluster and manage the deployment: status, scale, rollback, history, delete",
		newKubeApplyCmd(g, f),
		newKubeStatusCmd(g, f),
		newKubeScaleCmd(g, f),
		newKubeRollbackCmd(g, f),
		newKubeHistoryCmd(g, f),
		newKubeDeleteCmd(g, f),
	)
	cmd.Aliases = []string{"kubernetes", "k8s"}
	cmd.Long = `Apply Kubernetes manifests with server-side apply and manage the deployment they hold (a Deployment,
StatefulSet or DaemonSet named NAME, or the only workload of the manifests): its status and pods, scaling,
rollbacks, revisions and deletion.

The cluster is the one --kubeconfig and --context name, else KUBECONFIG, ~/.kube/config, or the pod's own.
A rollout that cannot succeed (a pod that cannot pull its image, crashes, cannot be scheduled, or a wait that
times out) exits 9.`
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG, else ~/.kube/config, else the in-cluster configuration)")
	pf.StringVar(&f.context, "context", "", "kubeconfig context (default its current context)")
	pf.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the deployment (default: the kubeconfig context's namespace, else default)")
	return cmd
}

// options are the library options that name the cluster.
func (f *kubeFlags) options() containerization.KubernetesOptions {
	return containerization.KubernetesOptions{Kubeconfig: f.kubeconfig, Context: f.context}
}

// progress returns the function the library reports apply, prune, wait and delete events to: plain lines on
// stderr in table mode, nothing with -o json or yaml (stdout carries the result alone either way).
func (g *globalOptions) kubeProgress() func(containerization.Event) {
	if g.structured() {
		return nil
	}
	w := g.errOut
	return func(e containerization.Event) {
		line := e.Phase + "  " + e.Subject + "  " + e.Status
		if e.Message != "" {
			line += "  " + e.Message
		}
		fmt.Fprintln(w, line)
	}
}

// timeoutFlag adds --timeout to cmd, for --wait.
func timeoutFlag(cmd *cobra.Command, d *time.Duration) {
	cmd.Flags().DurationVar(d, "timeout", 5*time.Minute, "how long --wait waits for the rollout")
}

func checkTimeout(d time.Duration) error {
	if d < 0 {
		return invalidf("--timeout %s is negative", d)
	}
	return nil
}

// getDeployment reads the deployment NAME, for the commands that act on it.
func getDeployment(cmd *cobra.Command, f *kubeFlags, name string) (*containerization.KubernetesDeployment, error) {
	return f.g.myrmex().GetKubernetesDeployment(cmd.Context(), name, f.namespace, f.options())
}

// actOnDeployment runs act on the deployment NAME (when act is nil, reads it), waits for it with --wait, and
// prints it; a failed wait still prints the deployment, with its failing pod, before the error.
func actOnDeployment(cmd *cobra.Command, g *globalOptions, f *kubeFlags, name string, wait bool, timeout time.Duration,
	act func() (*containerization.KubernetesDeployment, error)) error {
	if err := checkTimeout(timeout); err != nil {
		return err
	}
	if act == nil {
		act = func() (*containerization.KubernetesDeployment, error) { return getDeployment(cmd, f, name) }
	}
	d, err := act()
	if err != nil {
		return err
	}
	if wait {
		opts := f.options()
		opts.Progress = g.kubeProgress()
		var waited *containerization.KubernetesDeployment
		if waited, err = g.myrmex().WaitKubernetesDeployment(cmd.Context(), name, f.namespace, timeout, opts); waited != nil {
			d = waited
		}
	}
	if perr := printDeployment(g, d); perr != nil {
		return perr
	}
	return err
}

func newKubeStatusCmd(g *globalOptions, f *kubeFlags) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a deployment's state, with its pods",
		Long: `Show the deployment NAME (a Deployment, StatefulSet or DaemonSet): its status, replicas, image, ports,
services and revision, then its pods. With --wait, wait first until everything it applied is ready, failing
fast (exit 9) on a pod that cannot become ready.`,
		Example: `  myrmex kube status web -n shop
  myrmex kube status web -n shop --wait --timeout 2m -o json`,
		Args: exactArgs(1, "one deployment NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return actOnDeployment(cmd, g, f, args[0], wait, timeout, nil)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the deployment is ready before showing it")
	timeoutFlag(cmd, &timeout)
	return cmd
}

func newKubeScaleCmd(g *globalOptions, f *kubeFlags) *cobra.Command {
	var (
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "scale NAME REPLICAS",
		Short: "Set the replicas of a Deployment or StatefulSet",
		Long: `Set the replicas of the Deployment or StatefulSet NAME, as Myrmex's field manager (later applies do not
conflict with it), and show it. With --wait, wait until the new replicas are ready.`,
		Example: `  myrmex kube scale web 3 -n shop --wait`,
		Args:    exactArgs(2, "a deployment NAME and a number of REPLICAS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return invalidf("replicas %q: want a whole number, 0 or more", args[1])
			}
			return actOnDeployment(cmd, g, f, args[0], wait, timeout, func() (*containerization.KubernetesDeployment, error) {
				return g.myrmex().ScaleKubernetesDeployment(cmd.Context(), args[0], f.namespace, n, f.options())
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the deployment is ready")
	timeoutFlag(cmd, &timeout)
	return cmd
}

func newKubeRollbackCmd(g *globalOptions, f *kubeFlags) *cobra.Command {
	var (
		to      int64
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "Put a workload's pod template back to an earlier revision",
		Long: `Put the pod template of the Deployment, StatefulSet or DaemonSet NAME back to the revision before the
current one (kubectl rollout undo), or to --to-revision N (see myrmex kube history). Its controller then rolls it
out as a new revision. With --wait, wait until the rollout is done.`,
		Example: `  myrmex kube rollback web -n shop
  myrmex kube rollback web -n shop --to-revision 2 --wait`,
		Args: exactArgs(1, "one deployment NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to < 0 {
				return invalidf("--to-revision %d is negative", to)
			}
			return actOnDeployment(cmd, g, f, args[0], wait, timeout, func() (*containerization.KubernetesDeployment, error) {
				return g.myrmex().RollbackKubernetesDeployment(cmd.Context(), args[0], f.namespace, to, f.options())
			})
		},
	}
	cmd.Flags().Int64Var(&to, "to-revision", 0, "the revision to go back to (default: the one before the current)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the rollout is done")
	timeoutFlag(cmd, &timeout)
	return cmd
}

func newKubeHistoryCmd(g *globalOptions, f *kubeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "history NAME",
		Short:   "List a workload's revisions, oldest first",
		Example: `  myrmex kube history web -n shop`,
		Args:    exactArgs(1, "one deployment NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			revs, err := g.myrmex().KubernetesDeploymentHistory(cmd.Context(), args[0], f.namespace, f.options())
			if err != nil {
				return err
			}
			if revs == nil {
				revs = []kube.Revision{}
			}
			if g.structured() {
				return g.encode(revs)
			}
			tw := newTable(g.out)
			fmt.Fprintln(tw, "REVISION\tREPLICASET\tIMAGES\tCREATED\tCURRENT") // or the ControllerRevision of a StatefulSet or DaemonSet
			for _, r := range revs {
				current := ""
				if r.Current {
					current = "*"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Revision, r.ReplicaSet+r.Controller, joinPairs(r.Images), when(r.Created), current)
			}
			return tw.Flush()
		},
	}
}

func newKubeDeleteCmd(g *globalOptions, f *kubeFlags) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete everything a deployment applied",
		Long: `Delete what myrmex kube apply applied for NAME (its inventory), workloads first, without asking; a
deployment applied by another tool has its workload of that name deleted. With --wait, wait until the objects
are gone.`,
		Example: `  myrmex kube delete web -n shop --wait`,
		Args:    exactArgs(1, "one deployment NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := f.options()
			opts.Wait = wait
			opts.Progress = g.kubeProgress()
			deleted, err := g.myrmex().DeleteKubernetesDeployment(cmd.Context(), args[0], f.namespace, opts)
			if deleted == nil {
				deleted = []containerization.KubernetesChange{}
			}
			if g.structured() {
				if perr := g.encode(deleted); perr != nil {
					return perr
				}
				return err
			}
			tw := newTable(g.out)
			for _, c := range deleted {
				fmt.Fprintf(tw, "%s\t%s\n", c.Object, c.Action)
			}
			if perr := tw.Flush(); perr != nil {
				return perr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the deleted objects are gone")
	return cmd
}

// printDeployment writes a deployment: as JSON or YAML, the KubernetesDeployment; as a table, its summary and
// its pods.
func printDeployment(g *globalOptions, d *containerization.KubernetesDeployment) error {
	if g.structured() {
		return g.encode(d)
	}
	return printDeploymentTable(g.out, d)
}

func printDeploymentTable(w io.Writer, d *containerization.KubernetesDeployment) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Name:\t%s\n", d.Name)
	fmt.Fprintf(tw, "Namespace:\t%s\n", d.Namespace)
	if d.Kind != "" {
		fmt.Fprintf(tw, "Kind:\t%s\n", d.Kind)
	}
	fmt.Fprintf(tw, "Status:\t%s\n", d.Status)
	fmt.Fprintf(tw, "Replicas:\t%d/%d ready\n", d.ReadyReplicas, d.Replicas)
	fmt.Fprintf(tw, "Image:\t%s\n", d.Image)
	if len(d.Ports) > 0 {
		ports := make([]string, len(d.Ports))
		for i, p := range d.Ports {
			ports[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(tw, "Ports:\t%s\n", strings.Join(ports, ", "))
	}
	if len(d.Environment) > 0 {
		fmt.Fprintf(tw, "Environment:\t%s\n", joinPairs(d.Environment))
	}
	if r := resources(d.Resources); r != "" {
		fmt.Fprintf(tw, "Resources:\t%s\n", r)
	}
	fmt.Fprintf(tw, "Services:\t%s\n", cmp.Or(strings.Join(d.Services, ", "), "none"))
	if d.Revision > 0 {
		fmt.Fprintf(tw, "Revision:\t%d\n", d.Revision)
	}
	if !d.CreatedAt.IsZero() {
		fmt.Fprintf(tw, "Created:\t%s\n", when(d.CreatedAt))
	}
	if !d.LastUpdated.IsZero() {
		fmt.Fprintf(tw, "Updated:\t%s\n", when(d.LastUpdated))
	}
	if d.Message != "" {
		fmt.Fprintf(tw, "Message:\t%s\n", d.Message)
	}
	if len(d.Pods) == 0 {
		fmt.Fprintf(tw, "Pods:\tnone\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Pods) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "NAME\tPHASE\tREADY\tRESTARTS\tREASON\tCONTAINER\tNODE")
	for _, p := range d.Pods {
		ready := "no"
		if p.Ready {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.Name, p.Phase, ready, p.Restarts, p.Reason, p.Container, p.Node)
	}
	return tw.Flush()
}

// resources says a deployment's requests and limits, "requests cpu=100m memory=64Mi; limits cpu=500m".
func resources(r containerization.ResourceRequirements) string {
	var parts []string
	for _, a := range []struct {
		what string
		amt  containerization.ResourceAmounts
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		var s []string
		if a.amt.CPU != "" {
			s = append(s, "cpu="+a.amt.CPU)
		}
		if a.amt.Memory != "" {
			s = append(s, "memory="+a.amt.Memory)
		}
		if len(s) > 0 {
			parts = append(parts, a.what+" "+strings.Join(s, " "))
		}
	}
	return strings.Join(parts, "; ")
}

// joinPairs writes a map as "k=v, k=v", sorted by key.
func joinPairs(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// when writes a time of the cluster in local time, as the other tables do.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format(time.DateTime)
}
