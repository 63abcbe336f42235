package lint

import (
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// rule is a hadolint rule: its id, severity and hadolint's message.
type rule struct {
	id       string
	severity Severity
	message  string
}

var (
	dl3000 = rule{"DL3000", SeverityError, "Use absolute WORKDIR"}
	dl3002 = rule{"DL3002", SeverityWarning, "Last USER should not be root"}
	dl3003 = rule{"DL3003", SeverityWarning, "Use WORKDIR to switch to a directory"}
	dl3004 = rule{"DL3004", SeverityError, "Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root"}
	dl3006 = rule{"DL3006", SeverityWarning, "Always tag the version of an image explicitly"}
	dl3007 = rule{"DL3007", SeverityWarning, "Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag"}
	dl3008 = rule{"DL3008", SeverityWarning, "Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`"}
	dl3009 = rule{"DL3009", SeverityInfo, "Delete the apt-get lists after installing something"}
	dl3013 = rule{"DL3013", SeverityWarning, "Pin versions in pip. Instead of `pip install <package>` use `pip install <package>==<version>` or `pip install --requirement <requirements file>`"}
	dl3015 = rule{"DL3015", SeverityInfo, "Avoid additional packages by specifying `--no-install-recommends`"}
	dl3016 = rule{"DL3016", SeverityWarning, "Pin versions in npm. Instead of `npm install <package>` use `npm install <package>@<version>`"}
	dl3018 = rule{"DL3018", SeverityWarning, "Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`"}
	dl3019 = rule{"DL3019", SeverityInfo, "Use the `--no-cache` switch to avoid the need to use `--update` and remove `/var/cache/apk/*` when done installing packages"}
	dl3020 = rule{"DL3020", SeverityError, "Use COPY instead of ADD for files and folders"}
	dl3025 = rule{"DL3025", SeverityWarning, "Use arguments JSON notation for CMD and ENTRYPOINT arguments"}
	dl3042 = rule{"DL3042", SeverityWarning, "Avoid use of cache directory with pip. Use `pip install --no-cache-dir <package>`"}
	dl3059 = rule{"DL3059", SeverityInfo, "Multiple consecutive `RUN` instructions. Consider consolidation."}
	dl4000 = rule{"DL4000", SeverityError, "MAINTAINER is deprecated"}
	dl4003 = rule{"DL4003", SeverityWarning, "Multiple `CMD` instructions found. If you list more than one `CMD` then only the last `CMD` will take effect"}
	dl4004 = rule{"DL4004", SeverityError, "Multiple `ENTRYPOINT` instructions found. If you list more than one `ENTRYPOINT` then only the last `ENTRYPOINT` will take effect"}
	dl4006 = rule{"DL4006", SeverityWarning, "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check"}
)

// stage is the state the rules keep per build stage.
type stage struct {
	name        string // alias after AS, lowercased
	pseudo      bool   // instructions before the first FROM
	rootUser    int    // line of the last USER if it is root, else 0
	rootText    string // and its text
	cmds, entry int    // CMD and ENTRYPOINT seen
	pipefail    bool   // SHELL makes pipes fail, or is not a POSIX shell
	pipNoCache  bool   // ENV PIP_NO_CACHE_DIR is truthy here or in the parent stage
	aptLists    []Finding
	usedLater   bool
	prevRun     *runInfo // the RUN just before, for DL3059; nil after any other instruction
}

type runInfo struct {
	flags string
	count int
}

// checker walks the instructions in order and collects findings.
type checker struct {
	node     *parser.Node
	stages   []*stage
	findings []Finding
}

func (c *checker) report(r rule) {
	c.findings = append(c.findings, c.finding(r))
}

func (c *checker) finding(r rule) Finding {
	return Finding{Rule: r.id, Severity: r.severity, Line: c.node.StartLine, Message: r.message,
		Instruction: strings.TrimSpace(c.node.Original)}
}

// cur is the current stage; instructions before the first FROM (ARG) get a stage of their own.
func (c *checker) cur() *stage {
	if len(c.stages) == 0 {
		c.stages = append(c.stages, &stage{pseudo: true})
	}
	return c.stages[len(c.stages)-1]
}

func (c *checker) stageNamed(name string) *stage {
	for _, s := range c.stages {
		if s.name != "" && s.name == strings.ToLower(name) {
			return s
		}
	}
	return nil
}

func (c *checker) check(inst any) {
	st := c.cur()
	if _, isRun := inst.(*instructions.RunCommand); !isRun {
		st.prevRun = nil
	}
	switch in := inst.(type) {
	case *instructions.Stage:
		c.from(in)
	case *instructions.MaintainerCommand:
		c.report(dl4000)
	case *instructions.WorkdirCommand:
		if !absolute(in.Path) {
			c.report(dl3000)
		}
	case *instructions.UserCommand:
		st.rootUser, st.rootText = 0, ""
		if u := in.User; u == "root" || u == "0" || strings.HasPrefix(u, "root:") || strings.HasPrefix(u, "0:") {
			st.rootUser, st.rootText = c.node.StartLine, strings.TrimSpace(c.node.Original)
		}
	case *instructions.CmdCommand:
		if st.cmds++; st.cmds > 1 {
			c.report(dl4003)
		}
		c.jsonForm()
	case *instructions.EntrypointCommand:
		if st.entry++; st.entry > 1 {
			c.report(dl4004)
		}
		c.jsonForm()
	case *instructions.AddCommand:
		if !allFunc(in.SourcePaths, func(p string) bool { return isURL(p) || isArchive(p) }) {
			c.report(dl3020)
		}
	case *instructions.ShellCommand:
		st.pipefail = shellPipefail(in.Shell)
	case *instructions.EnvCommand:
		for _, kv := range in.Env {
			if kv.Key == "PIP_NO_CACHE_DIR" {
				st.pipNoCache = truthy(kv.Value)
			}
		}
	case *instructions.RunCommand:
		c.run(in, st)
	}
}

func (c *checker) jsonForm() {
	if !c.node.Attributes["json"] {
		c.report(dl3025)
	}
}

func (c *checker) from(in *instructions.Stage) {
	base := in.BaseName
	parent := c.stageNamed(base)
	st := &stage{name: in.Name}
	if parent != nil {
		parent.usedLater = true
		st.pipNoCache = parent.pipNoCache
	}
	// ARGs before the first FROM live in a pseudo-stage; it ends here.
	if len(c.stages) == 1 && c.stages[0].pseudo {
		c.stages = c.stages[:0]
	}
	c.stages = append(c.stages, st)

	if parent != nil || strings.EqualFold(base, "scratch") || strings.Contains(base, "$") {
		return
	}
	if strings.Contains(base, "@") {
		return // pinned by digest
	}
	_, tag, hasTag := strings.Cut(path.Base(base), ":")
	switch {
	case !hasTag:
		c.report(dl3006)
	case tag == "latest":
		c.report(dl3007)
	}
}

// finish reports what can only be known at the end: the last USER of each stage, and apt lists left in a
// stage that ends up in the image (the last one or one a later FROM builds on), as hadolint does.
func (c *checker) finish() {
	for i, st := range c.stages {
		if st.rootUser != 0 {
			c.findings = append(c.findings, Finding{Rule: dl3002.id, Severity: dl3002.severity,
				Line: st.rootUser, Message: dl3002.message, Instruction: st.rootText})
		}
		if i == len(c.stages)-1 || st.usedLater {
			c.findings = append(c.findings, st.aptLists...)
		}
	}
}

func (c *checker) run(in *instructions.RunCommand, st *stage) {
	sh := runScript(in)
	// Without an expander BuildKit defers reading the mount options; keep ${VARS} as written.
	var mounts []*instructions.Mount
	if err := in.Expand(func(w string) (string, error) { return w, nil }); err == nil {
		mounts = instructions.GetMounts(in)
	}

	// DL3059: the same flags, and neither RUN a chain of more than two commands.
	this := &runInfo{flags: strings.Join(c.node.Flags, " "), count: len(sh.cmds)}
	if p := st.prevRun; p != nil && p.flags == this.flags && p.count <= 2 && this.count <= 2 {
		c.report(dl3059)
	}
	st.prevRun = this

	if in.PrependShell && sh.pipe && !st.pipefail {
		c.report(dl4006)
	}

	var (
		aptUpdate, aptClean bool
		pipNoCacheInline    = pipNoCacheAssigned(sh)
	)
	seen := map[string]bool{}
	once := func(r rule) {
		if !seen[r.id] {
			seen[r.id] = true
			c.report(r)
		}
	}
	for _, cmd := range sh.cmds {
		switch cmd.base() {
		case "cd":
			once(dl3003)
		case "sudo":
			once(dl3004)
		case "rm":
			for _, a := range cmd.args {
				if strings.HasPrefix(a, "/var/lib/apt/lists") {
					aptClean = true
				}
			}
		case "apt-get", "apt":
			if _, ok := cmd.subcommand(aptValued, "update"); ok {
				aptUpdate = true
			}
			pkgs, ok := cmd.subcommand(aptValued, "install")
			if !ok {
				break
			}
			if !slices.ContainsFunc(cmd.args, recommendsOff) {
				once(dl3015)
			}
			if !allFunc(pkgs, aptPinned) {
				once(dl3008)
			}
		case "apk":
			pkgs, ok := cmd.subcommand(apkValued, "add")
			if !ok {
				break
			}
			if !allFunc(pkgs, apkPinned) {
				once(dl3018)
			}
			if !cmd.hasFlag("--no-cache") && !cacheMount(mounts, "/var/cache/apk", "/etc/apk/cache") {
				once(dl3019)
			}
		case "npm":
			pkgs, ok := cmd.subcommand(npmValued, "install", "i")
			if ok && !allFunc(pkgs, npmPinned) {
				once(dl3016)
			}
		default:
			pip, ok := pipArgs(cmd)
			if !ok {
				break
			}
			pkgs, ok := pip.subcommand(pipValued, "install")
			if !ok {
				break
			}
			if !pip.hasFlag("-r", "--requirement", "-c", "--constraint") && !slices.Contains(pkgs, ".") && !allFunc(pkgs, pipPinned) {
				once(dl3013)
			}
			if !pip.hasFlag("--no-cache-dir") && !st.pipNoCache && !pipNoCacheInline && !cacheMount(mounts, "/root/.cache/pip") {
				once(dl3042)
			}
		}
	}
	if aptUpdate && !aptClean && !cacheMount(mounts, "/var/lib/apt/lists") &&
		!(cacheMount(mounts, "/var/lib/apt") && cacheMount(mounts, "/var/cache/apt")) {
		st.aptLists = append(st.aptLists, c.finding(dl3009))
	}
}

// runScript parses the shell script of a RUN. An exec-form RUN is one command, unless it runs a shell with
// -c; a RUN whose script is a heredoc (RUN <<EOF) is the heredoc's content.
func runScript(in *instructions.RunCommand) script {
	line := in.CmdLine
	if !in.PrependShell {
		if len(line) >= 3 && strings.HasSuffix(line[0], "sh") && line[1] == "-c" {
			return parseShell(line[2])
		}
		if len(line) == 0 {
			return script{empty: true}
		}
		return script{cmds: []command{{name: line[0], args: line[1:]}}}
	}
	src := strings.Join(line, " ")
	if len(in.Files) > 0 && strings.HasPrefix(strings.TrimSpace(src), "<<") {
		src = in.Files[0].Data
	}
	return parseShell(src)
}

func allFunc(xs []string, f func(string) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

func absolute(p string) bool {
	p = strings.Trim(p, `"'`)
	return strings.HasPrefix(p, "/") || strings.HasPrefix(p, "$") || windowsAbs.MatchString(p)
}

var windowsAbs = regexp.MustCompile(`^[A-Za-z]:[\\/]`)

func isURL(p string) bool {
	p = strings.Trim(p, `"'`)
	return strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://")
}

var archiveExts = []string{".tar", ".Z", ".bz2", ".gz", ".lz", ".lzma", ".tZ", ".tb2", ".tbz", ".tbz2", ".tgz", ".tlz", ".tpz", ".txz", ".xz"}

func isArchive(p string) bool {
	p = strings.Trim(p, `"'`)
	return slices.ContainsFunc(archiveExts, func(ext string) bool { return strings.HasSuffix(p, ext) })
}

// shellPipefail: a SHELL that is not POSIX (PowerShell, cmd) has no pipes to worry about; a POSIX one must
// be bash, zsh or ash with -o pipefail.
func shellPipefail(sh []string) bool {
	if len(sh) == 0 {
		return false
	}
	switch strings.TrimSuffix(strings.ToLower(path.Base(strings.ReplaceAll(sh[0], `\`, "/"))), ".exe") {
	case "pwsh", "powershell", "cmd":
		return true
	case "bash", "zsh", "ash":
		for i := 1; i+1 < len(sh); i++ {
			if sh[i] == "-o" && sh[i+1] == "pipefail" {
				return true
			}
		}
	}
	return false
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "on", "yes":
		return true
	}
	return false
}

func pipNoCacheAssigned(sh script) bool {
	for _, cmd := range sh.cmds {
		for _, a := range cmd.assign {
			if k, v, _ := strings.Cut(a, "="); k == "PIP_NO_CACHE_DIR" && truthy(v) {
				return true
			}
		}
	}
	return false
}

func cacheMount(mounts []*instructions.Mount, targets ...string) bool {
	for _, m := range mounts {
		if m.Type != instructions.MountTypeCache {
			continue
		}
		for _, t := range targets {
			if strings.HasPrefix(m.Target, t) {
				return true
			}
		}
	}
	return false
}

// Flags that take the next word as their value, per package manager.
var (
	aptValued = []string{"-o", "--option", "-t", "--target-release", "-c", "--config-file"}
	apkValued = []string{"-t", "--virtual", "-X", "--repository", "-p", "--root", "--arch", "--keys-dir", "--repositories-file", "--cache-dir"}
	npmValued = []string{"--prefix", "--registry", "--cache", "-C", "--userconfig", "--tag"}
	pipValued = []string{"--abi", "-b", "--build", "-e", "--editable", "--extra-index-url", "-f", "--find-links", "-i",
		"--index-url", "--implementation", "--no-binary", "--only-binary", "--platform", "--prefix", "--progress-bar",
		"--proxy", "--python-version", "--root", "--src", "-t", "--target", "--trusted-host", "--upgrade-strategy",
		"-r", "--requirement", "-c", "--constraint"}
)

func recommendsOff(a string) bool {
	return a == "--no-install-recommends" || strings.EqualFold(a, "APT::Install-Recommends=false") ||
		strings.EqualFold(a, "APT::Install-Recommends=0")
}

// aptPinned: name=version, a release (name/bookworm-backports) or a local .deb.
func aptPinned(p string) bool {
	return strings.Contains(p, "=") || strings.Contains(p, "/") || strings.HasSuffix(p, ".deb")
}

func apkPinned(p string) bool {
	return strings.ContainsAny(p, "=~<>") || strings.HasSuffix(p, ".apk")
}

// npmPinned: name@version (the scope of @scope/name does not count), a git URL with #ref, a tarball or a
// local folder.
func npmPinned(p string) bool {
	switch {
	case hasAnyPrefix(p, "git://", "git+ssh://", "git+http://", "git+https://"):
		return strings.Contains(p, "#")
	case hasAnySuffix(p, ".tar", ".tar.gz", ".tgz"), hasAnyPrefix(p, "/", "./", "../", "~/"):
		return true
	}
	if strings.HasPrefix(p, "@") {
		_, p, _ = strings.Cut(p, "/")
	}
	return strings.Contains(p, "@")
}

var pipVCS = regexp.MustCompile(`^(git|hg|svn|bzr)(\+[a-z-]+)?:`)

// pipPinned: a version specifier, a VCS URL with @ref, a wheel or sdist, or a path.
func pipPinned(p string) bool {
	if pipVCS.MatchString(p) {
		return strings.Contains(p, "@")
	}
	return strings.ContainsAny(p, "=<>!~") || hasAnySuffix(p, ".whl", ".tar.gz") || strings.Contains(p, "/")
}

// pipArgs recognises pip, pip3, pip3.12 and python[3[.x]] -m pip, and returns the command as pip sees it.
func pipArgs(cmd command) (command, bool) {
	name := cmd.base()
	if pipName.MatchString(name) {
		return command{name: "pip", args: cmd.args}, true
	}
	if pythonName.MatchString(name) {
		for i := 0; i+1 < len(cmd.args); i++ {
			if cmd.args[i] == "-m" && pipName.MatchString(cmd.args[i+1]) {
				return command{name: "pip", args: cmd.args[i+2:]}, true
			}
		}
	}
	return command{}, false
}

var (
	pipName    = regexp.MustCompile(`^pip[0-9.]*$`)
	pythonName = regexp.MustCompile(`^python[0-9.]*$`)
)

func hasAnyPrefix(s string, ps ...string) bool {
	return slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(s, p) })
}

func hasAnySuffix(s string, ps ...string) bool {
	return slices.ContainsFunc(ps, func(p string) bool { return strings.HasSuffix(s, p) })
}
