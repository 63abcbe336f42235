package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/codomyrmex/containerization"
)

// createOptions are the flags of container create. Flags given with --file override or extend the file.
type createOptions struct {
	file           string
	image          string
	env            []string
	publish        []string
	volumes        []string
	networks       []string
	cpus           string
	memory         string
	cpuReservation string
	memReservation string
	restart        string
	labels         []string
	createNetworks bool
	// isolation
	user                           string
	readOnly, privileged, hardened bool
	tmpfs, capDrop, capAdd         []string
	securityOpts                   []string
	pidsLimit                      int64
}

func newContainerCreateCmd(g *globalOptions) *cobra.Command {
	var o createOptions
	cmd := &cobra.Command{
		Use:   "create [NAME] [flags] [-- COMMAND [ARG...]]",
		Short: "Create a container, without starting it",
		Long: `Create a container from flags, from a ContainerConfig file (YAML or JSON, the specification's field
names), or both: flags given with --file override its fields and add to its maps and lists. NAME may be left
out when the file has a name. Myrmex does not pull: the image must be in the engine's store.

Ports (-p) take either form:
  CONTAINERPORT[/PROTO]=[HOSTIP:]HOSTPORT     8080/tcp=127.0.0.1:18080   53/udp=1053   9000=
  [[HOSTIP:]HOSTPORT:]CONTAINERPORT[/PROTO]   127.0.0.1:18080:8080/tcp   18080:8080    8080
An empty host port lets the engine choose one.

Volumes (-v) are SOURCE:TARGET[:ro|rw]. A SOURCE starting with /, ./, ../ or ~/ is a host path (bind mount);
any other SOURCE names a volume, created if missing.`,
		Example: `  myrmex container create web --image myrmex.local/web:test -p 8080/tcp=127.0.0.1:18080 --memory 256m
  myrmex container create job --image myrmex.local/busybox:test --env MODE=batch -- sh -c 'echo hello'
  myrmex container create -f web.yaml --restart on-failure:3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, command := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				name, command = args[:dash], args[dash:]
			} else if len(args) > 1 {
				name, command = args[:1], args[1:]
			}
			if len(name) > 1 {
				return invalidf("create takes one NAME, got %q; put the command after --", name)
			}
			cfg, err := o.config(cmd, g.in, command)
			if err != nil {
				return err
			}
			var n string
			if len(name) == 1 {
				n = name[0]
			}
			return runCreate(cmd, g, o, n, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read a ContainerConfig from a YAML or JSON file (- for stdin)")
	f.StringVar(&o.image, "image", "", "image to run (required unless the file sets it)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable, KEY=VALUE (or KEY to pass this environment's value)")
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a container port: 8080/tcp=127.0.0.1:18080 or 127.0.0.1:18080:8080/tcp")
	f.StringArrayVarP(&o.volumes, "volume", "v", nil, "mount a volume or host path: SOURCE:TARGET[:ro]")
	f.StringArrayVar(&o.networks, "network", nil, "join a network (repeat for several; the first is joined at creation)")
	f.StringVar(&o.cpus, "cpus", "", "CPU limit: a number of CPUs (0.5) or millicores (500m)")
	f.StringVarP(&o.memory, "memory", "m", "", "memory limit: 256m, 1g, 512MiB")
	f.StringVar(&o.cpuReservation, "cpu-reservation", "", "CPUs guaranteed under contention (a relative weight)")
	f.StringVar(&o.memReservation, "memory-reservation", "", "memory soft limit")
	f.StringVar(&o.restart, "restart", "", "restart policy: no, always, unless-stopped, on-failure[:N]")
	f.StringArrayVarP(&o.labels, "label", "l", nil, "set a label, KEY=VALUE")
	f.BoolVar(&o.createNetworks, "create-networks", false, "create missing networks instead of failing")
	f.StringVarP(&o.user, "user", "u", "", "run as NAME or UID[:GROUP|GID] instead of the image's user")
	f.BoolVar(&o.readOnly, "read-only", false, "mount the root filesystem read-only")
	f.StringArrayVar(&o.tmpfs, "tmpfs", nil, "mount a tmpfs: PATH[:OPTIONS], e.g. /tmp:size=64m,mode=1777")
	f.StringArrayVar(&o.capDrop, "cap-drop", nil, "drop a Linux capability (ALL, NET_RAW…)")
	f.StringArrayVar(&o.capAdd, "cap-add", nil, "add a Linux capability (NET_BIND_SERVICE…)")
	f.StringArrayVar(&o.securityOpts, "security-opt", nil, "no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "at most this many processes")
	f.BoolVar(&o.privileged, "privileged", false, "give every capability and the host's devices")
	f.BoolVar(&o.hardened, "hardened", false, "drop every capability, no new privileges, read-only root with a tmpfs /tmp, at most 512 processes")
	return cmd
}

// config reads the file, if any, and lays the flags over it.
func (o createOptions) config(cmd *cobra.Command, stdin io.Reader, command []string) (*containerization.ContainerConfig, error) {
	cfg := &containerization.ContainerConfig{}
	if o.file != "" {
		var (
			b   []byte
			err error
		)
		if o.file == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(o.file)
		}
		if err != nil {
			return nil, invalidf("reading config: %v", err)
		}
		if err := yaml.UnmarshalStrict(b, cfg); err != nil {
			source := o.file
			if source == "-" {
				source = "from stdin"
			}
			return nil, invalidf("config %s: %v", source, err)
		}
	}
	changed := cmd.Flags().Changed
	set := func(flag string, dst *string, v string) {
		if changed(flag) {
			*dst = v
		}
	}
	set("image", &cfg.Image, o.image)
	set("cpus", &cfg.Resources.CPULimit, o.cpus)
	set("memory", &cfg.Resources.MemoryLimit, o.memory)
	set("cpu-reservation", &cfg.Resources.CPUReservation, o.cpuReservation)
	set("memory-reservation", &cfg.Resources.MemoryReservation, o.memReservation)
	set("restart", &cfg.RestartPolicy, o.restart)
	set("user", &cfg.User, o.user)
	if len(command) > 0 {
		cfg.Command = command
	}
	setBool := func(flag string, dst *bool, v bool) {
		if changed(flag) {
			*dst = v
		}
	}
	setBool("read-only", &cfg.ReadOnly, o.readOnly)
	setBool("privileged", &cfg.Privileged, o.privileged)
	setBool("hardened", &cfg.Hardened, o.hardened)
	if changed("pids-limit") {
		cfg.PidsLimit = o.pidsLimit
	}
	cfg.CapDrop = append(cfg.CapDrop, o.capDrop...)
	cfg.CapAdd = append(cfg.CapAdd, o.capAdd...)
	for _, t := range o.tmpfs {
		p, opts, _ := strings.Cut(t, ":")
		cfg.Tmpfs = initMap(cfg.Tmpfs)
		cfg.Tmpfs[p] = opts
	}
	for _, so := range o.securityOpts {
		switch k, v, _ := strings.Cut(so, "="); {
		case so == "no-new-privileges" || so == "no-new-privileges:true" || so == "no-new-privileges=true":
			cfg.NoNewPrivileges = true
		case k == "seccomp" && v != "":
			cfg.SeccompProfile = v
		default:
			return nil, invalidf("--security-opt %q: want no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json", so)
		}
	}

	if len(o.env) > 0 {
		cfg.Environment = initMap(cfg.Environment)
		if err := parseKeyValues("env", o.env, cfg.Environment, true); err != nil {
			return nil, err
		}
	}
	if len(o.labels) > 0 {
		cfg.Labels = initMap(cfg.Labels)
		if err := parseKeyValues("label", o.labels, cfg.Labels, false); err != nil {
			return nil, err
		}
	}
	if len(o.publish) > 0 {
		cfg.Ports = initMap(cfg.Ports)
		seen := map[string]bool{}
		for _, p := range o.publish {
			key, binding, err := parsePublish(p)
			if err != nil {
				return nil, err
			}
			if seen[key] {
				return nil, invalidf("-p: container port %s is published twice", key)
			}
			seen[key] = true
			cfg.Ports[key] = binding
		}
	}
	if len(o.volumes) > 0 {
		cfg.Volumes = initMap(cfg.Volumes)
		for _, v := range o.volumes {
			src, m, err := parseVolume(v)
			if err != nil {
				return nil, err
			}
			cfg.Volumes[src] = m
		}
	}
	for _, n := range o.networks {
		if !slices.Contains(cfg.Networks, n) {
			cfg.Networks = append(cfg.Networks, n)
		}
	}
	return cfg, nil
}

func initMap[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return M{}
	}
	return m
}

func runCreate(cmd *cobra.Command, g *globalOptions, o createOptions, name string, cfg *containerization.ContainerConfig) error {
	opts := g.manageOptions(nil)
	opts.CreateNetworks = o.createNetworks
	res, err := g.myrmex().ManageContainers(cmd.Context(), containerization.OpCreate, name, cfg, opts)
	for _, w := range res.Warnings {
		fmt.Fprintf(g.errOut, "myrmex: warning: %s\n", w)
	}
	g.warnVerdict(res.PolicyVerdict)
	if err != nil {
		return err
	}
	if g.structured() {
		return g.encode(res)
	}
	return printResults(g, []*containerization.ContainerResult{res})
}
