package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
)

// The hardened preset's values.
const (
	hardenedPids     = 512
	hardenedTmpSize  = "size=64m"
	maxSeccompFile   = 1 << 20
	maxCapabilityArg = 64
)

// capabilities are the Linux capabilities (capabilities(7)), without the CAP_ prefix.
var capabilities = []string{"AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
	"NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT",
	"SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM"}

var (
	userRE      = regexp.MustCompile(`^[a-zA-Z0-9_.][a-zA-Z0-9_.-]{0,63}(:[a-zA-Z0-9_.][a-zA-Z0-9_.-]{0,63})?$`)
	tmpfsOptRE  = regexp.MustCompile(`^(size=[0-9]+[kmgKMG]?|mode=[0-7]{3,4}|uid=[0-9]+|gid=[0-9]+|nr_inodes=[0-9]+[kmgKMG]?|noexec|exec|nosuid|suid|nodev|dev|ro|rw)$`)
	capPrefixRE = regexp.MustCompile(`(?i)^cap_`)
)

// NormalizeCapability reads "net_bind_service", "CAP_NET_BIND_SERVICE" or "ALL" as the engine stores it:
// "CAP_NET_BIND_SERVICE", "ALL".
func NormalizeCapability(c string) (string, bool) {
	c = strings.ToUpper(capPrefixRE.ReplaceAllString(strings.TrimSpace(c), ""))
	if c == "ALL" {
		return c, true
	}
	if slices.Contains(capabilities, c) {
		return "CAP_" + c, true
	}
	return "", false
}

// isolation checks the isolation fields of cfg and puts them in req, with the hardened preset under them.
func isolation(cfg ContainerConfig, req *createRequest) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	h := req.host
	if cfg.User != "" {
		if !userRE.MatchString(cfg.User) {
			bad("user %q: want NAME or UID, with :GROUP or :GID", cfg.User)
		}
		req.config.User = cfg.User
	}
	if cfg.Hardened && cfg.Privileged {
		bad("hardened and privileged contradict each other")
	}
	h.Privileged = cfg.Privileged
	h.ReadonlyRootfs = cfg.ReadOnly || cfg.Hardened

	if len(cfg.Tmpfs) > maxCapabilityArg {
		bad("more than %d tmpfs mounts", maxCapabilityArg)
	}
	targets := map[string]bool{}
	for _, m := range h.Mounts {
		targets[path.Clean(m.Target)] = true
	}
	for p, opts := range cfg.Tmpfs {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			bad("tmpfs %q: want an absolute path other than /", p)
			continue
		}
		if targets[p] {
			bad("tmpfs %s is also a volume's container path", p)
			continue
		}
		if opts != "" {
			for _, o := range strings.Split(opts, ",") {
				if !tmpfsOptRE.MatchString(o) {
					bad("tmpfs %s: option %q: want size=, mode=, uid=, gid=, nr_inodes=, noexec, nosuid, nodev, ro or rw", p, o)
				}
			}
		}
		if h.Tmpfs == nil {
			h.Tmpfs = map[string]string{}
		}
		h.Tmpfs[p] = opts
	}
	if cfg.Hardened && len(cfg.Tmpfs) == 0 && !targets["/tmp"] {
		h.Tmpfs = map[string]string{"/tmp": hardenedTmpSize}
	}

	caps := func(field string, list []string) []string {
		if len(list) > maxCapabilityArg {
			bad("%s: more than %d capabilities", field, maxCapabilityArg)
			return nil
		}
		var out []string
		for _, c := range list {
			n, ok := NormalizeCapability(c)
			if !ok {
				bad("%s: %q is not a Linux capability (capabilities(7)) nor ALL", field, c)
				continue
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	h.CapDrop = caps("cap_drop", cfg.CapDrop)
	h.CapAdd = caps("cap_add", cfg.CapAdd)
	if cfg.Hardened && len(cfg.CapDrop) == 0 {
		h.CapDrop = []string{"ALL"}
	}
	for _, c := range h.CapAdd {
		if c == "ALL" && !cfg.Privileged {
			bad("cap_add: ALL is privileged in all but name: set privileged instead, or name the capabilities")
		}
	}

	if cfg.NoNewPrivileges || cfg.Hardened {
		h.SecurityOpt = append(h.SecurityOpt, "no-new-privileges:true")
	}
	switch p := cfg.SeccompProfile; {
	case p == "":
	case p == "unconfined":
		if cfg.Hardened {
			bad("seccomp_profile unconfined contradicts hardened")
		}
		h.SecurityOpt = append(h.SecurityOpt, "seccomp=unconfined")
	default:
		profile, err := readSeccomp(p)
		if err != nil {
			bad("seccomp_profile: %v", err)
		} else {
			h.SecurityOpt = append(h.SecurityOpt, "seccomp="+profile)
		}
	}

	switch {
	case cfg.PidsLimit < 0:
		bad("pids_limit %d: want a positive number (0: no limit)", cfg.PidsLimit)
	case cfg.PidsLimit > 0:
		h.PidsLimit = &cfg.PidsLimit
	case cfg.Hardened:
		n := int64(hardenedPids)
		h.PidsLimit = &n
	}
	return errs
}

// readSeccomp reads a seccomp profile file as the engine takes it: its JSON, compacted.
func readSeccomp(file string) (string, error) {
	// A FIFO or a device would be read until a writer that may never come: only a regular file is read.
	if st, err := os.Stat(file); err != nil {
		return "", err
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", file)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxSeccompFile+1)); err != nil {
		return "", err
	}
	if buf.Len() > maxSeccompFile {
		return "", fmt.Errorf("%s is larger than %d bytes", file, maxSeccompFile)
	}
	var probe struct {
		DefaultAction string `json:"defaultAction"`
	}
	if err := json.Unmarshal(buf.Bytes(), &probe); err != nil || probe.DefaultAction == "" {
		return "", fmt.Errorf("%s is not a seccomp profile (JSON with a defaultAction)", file)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, buf.Bytes()); err != nil {
		return "", err
	}
	return out.String(), nil
}
