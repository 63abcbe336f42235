package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/codomyrmex/containerization"
)

// applyOptions are the flags of kube apply.
type applyOptions struct {
	file            string
	replicas        int
	images          []string
	labels          []string
	annotations     []string
	env             []string
	requests        []string
	limits          []string
	createNamespace bool
	wait            bool
	timeout         time.Duration
	prune           bool
	dryRun          bool
	forceConflicts  bool
	pinDigests      bool
	fieldManager    string
}

func newKubeApplyCmd(g *globalOptions, f *kubeFlags) *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply NAME -f PATH",
		Short: "Apply manifests with server-side apply, and show the deployment",
		Long: `Apply the manifests at PATH (a file, a directory read recursively, or - for stdin; YAML or JSON, several
documents each) to the namespace with server-side apply, after the overrides given as flags (the files are
never edited), and show what changed and the deployment NAME: the Deployment, StatefulSet or DaemonSet of that
name, or the only workload of the manifests.

Objects are applied in dependency order (namespaces and CRDs, configuration, services, then workloads), each
first checked by the API server in a dry run, so that a bad object stops the apply before anything changes.
--prune deletes what an earlier apply of NAME applied that the manifests no longer hold. --wait waits until
everything is ready, and fails fast (exit 9) on a pod that cannot pull its image, crashes or cannot be
scheduled. Progress goes to stderr.

--image takes CONTAINER=IMAGE (that container, in every workload) or a bare IMAGE (every container of the
deployment). --requests and --limits take cpu=QUANTITY,memory=QUANTITY.`,
		Example: `  myrmex kube apply web -f k8s/ -n shop --wait
  myrmex kube apply web -f web.yaml --replicas 3 --image web=registry.example.com/web:1.5 --env MODE=prod
  kustomize build overlays/prod | myrmex kube apply web -f - -n shop --prune --dry-run`,
		Args: exactArgs(1, "one deployment NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.options(cmd, g, f)
			if err != nil {
				return err
			}
			opts.Progress = g.kubeProgress()
			d, err := g.myrmex().OrchestrateKubernetes(cmd.Context(), args[0], o.file, f.namespace, opts)
			if d != nil {
				if perr := printApply(g, d, err == nil); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.file, "filename", "f", "", "manifests: a file, a directory, or - for stdin (required)")
	fl.IntVar(&o.replicas, "replicas", 0, "set the replicas of the deployment")
	fl.StringArrayVar(&o.images, "image", nil, "set an image: CONTAINER=IMAGE, or IMAGE for every container of the deployment (repeat for several)")
	fl.StringArrayVar(&o.labels, "set-label", nil, "add a label to every object and pod template, KEY=VALUE")
	fl.StringArrayVar(&o.annotations, "set-annotation", nil, "add an annotation to every object and pod template, KEY=VALUE")
	fl.StringArrayVar(&o.env, "env", nil, "set an environment variable on the deployment's containers, KEY=VALUE (VALUE secret:NAME: from the secret store, through a Secret)")
	fl.StringArrayVar(&o.requests, "requests", nil, "resource requests of the deployment's containers: cpu=100m,memory=64Mi")
	fl.StringArrayVar(&o.limits, "limits", nil, "resource limits of the deployment's containers: cpu=500m,memory=256Mi")
	fl.BoolVar(&o.createNamespace, "create-namespace", false, "create the namespace when it does not exist")
	fl.BoolVar(&o.wait, "wait", false, "wait until everything applied is ready, failing fast on pods that cannot start")
	timeoutFlag(cmd, &o.timeout)
	fl.BoolVar(&o.prune, "prune", false, "delete what an earlier apply of NAME applied that the manifests no longer hold")
	fl.BoolVar(&o.dryRun, "dry-run", false, "change nothing: the API server checks every object, and the output says what would change")
	fl.BoolVar(&o.forceConflicts, "force-conflicts", false, "take over fields another field manager owns instead of failing")
	fl.BoolVar(&o.pinDigests, "pin-digests", false, "apply every image as the digest its tag names now (the one the policy checked)")
	fl.StringVar(&o.fieldManager, "field-manager", "", "server-side apply field manager (default myrmex)")
	return cmd
}

// options checks the flags and turns them into the library's options, before anything is read or contacted.
func (o applyOptions) options(cmd *cobra.Command, g *globalOptions, f *kubeFlags) (containerization.KubernetesOptions, error) {
	opts := f.options()
	if o.file == "" {
		return opts, &usageError{invalidf("%s needs the manifests: -f PATH (a file, a directory, or - for stdin)", cmd.CommandPath())}
	}
	if cmd.Flags().Changed("replicas") {
		if o.replicas < 0 {
			return opts, invalidf("--replicas %d is negative", o.replicas)
		}
		n := o.replicas
		opts.Replicas = &n
	}
	for _, img := range o.images {
		c, ref, named := strings.Cut(img, "=")
		switch {
		case !named && img == "":
			return opts, invalidf("--image is empty: want CONTAINER=IMAGE or IMAGE")
		case !named && opts.Image != "":
			return opts, invalidf("--image %q and --image %q: give one IMAGE for every container, or CONTAINER=IMAGE for each", opts.Image, img)
		case !named:
			opts.Image = img
		case c == "" || ref == "":
			return opts, invalidf("--image %q: want CONTAINER=IMAGE or IMAGE", img)
		default:
			if opts.Images == nil {
				opts.Images = map[string]string{}
			}
			opts.Images[c] = ref
		}
	}
	for _, kv := range []struct {
		flag   string
		values []string
		dst    *map[string]string
	}{{"set-label", o.labels, &opts.Labels}, {"set-annotation", o.annotations, &opts.Annotations}, {"env", o.env, &opts.Environment}} {
		if len(kv.values) == 0 {
			continue
		}
		*kv.dst = map[string]string{}
		if err := parseKeyValues(kv.flag, kv.values, *kv.dst, false); err != nil {
			return opts, err
		}
	}
	var res containerization.ResourceRequirements
	if err := parseAmounts("requests", o.requests, &res.Requests); err != nil {
		return opts, err
	}
	if err := parseAmounts("limits", o.limits, &res.Limits); err != nil {
		return opts, err
	}
	if len(o.requests) > 0 || len(o.limits) > 0 {
		opts.Resources = &res
	}
	if err := checkTimeout(o.timeout); err != nil {
		return opts, err
	}
	opts.CreateNamespace, opts.Wait, opts.Timeout = o.createNamespace, o.wait, o.timeout
	opts.Prune, opts.DryRun, opts.ForceConflicts = o.prune, o.dryRun, o.forceConflicts
	opts.FieldManager = o.fieldManager
	opts.Stdin = cmd.InOrStdin()
	opts.PinDigests = o.pinDigests
	if o.pinDigests || g.policy != nil {
		// The gate reads the images from their registries with Myrmex's stored logins first.
		var err error
		if opts.Registry.Keychain, err = g.keychain(); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// parseAmounts reads --requests or --limits values, "cpu=100m,memory=64Mi", into a. The quantities themselves
// are checked by the library.
func parseAmounts(flag string, values []string, a *containerization.ResourceAmounts) error {
	for _, v := range values {
		for _, kv := range strings.Split(v, ",") {
			k, q, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || q == "" {
				return invalidf("--%s %q: want cpu=QUANTITY,memory=QUANTITY", flag, v)
			}
			switch k {
			case "cpu":
				a.CPU = q
			case "memory":
				a.Memory = q
			default:
				return invalidf("--%s %q: %q is not a resource Myrmex sets: want cpu or memory", flag, v, k)
			}
		}
	}
	return nil
}

// printApply writes the result of an apply: as JSON or YAML, the KubernetesDeployment; as a table, the
// changes, the pruned objects, then the deployment. After a failure, the deployment is shown when its state
// was read (a rollout that failed shows the pod that cannot start).
func printApply(g *globalOptions, d *containerization.KubernetesDeployment, ok bool) error {
	if g.structured() {
		return g.encode(d)
	}
	w := g.out
	suffix := ""
	if d.DryRun {
		suffix = " (dry run)"
	}
	if len(d.Changes) > 0 {
		if err := printChanges(w, d.Changes, suffix); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(d.Pruned) > 0 {
		if err := printChanges(w, d.Pruned, suffix); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if !ok && d.Kind == "" {
		return nil // nothing was read of the deployment: a summary would only show zeros
	}
	return printDeploymentTable(w, d)
}

// printChanges writes a table of changes, a line per changed field.
func printChanges(w io.Writer, changes []containerization.KubernetesChange, suffix string) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "OBJECT\tACTION\tFIELDS")
	for _, c := range changes {
		first := ""
		if len(c.Fields) > 0 {
			first = c.Fields[0]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Object, c.Action+suffix, first)
		for _, field := range c.Fields[min(1, len(c.Fields)):] {
			fmt.Fprintf(tw, "\t\t%s\n", field)
		}
	}
	return tw.Flush()
}
