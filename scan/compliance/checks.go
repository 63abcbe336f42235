package compliance

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// input is everything the checks look at.
type input struct {
	config       *v1.ConfigFile
	ref          string
	contentTrust bool
	files        *files
}

// A check returns what it found; failed is false when details are only notes (nothing to look at).
type check struct {
	id, title   string
	level       Level
	remediation string
	run         func(*input) (details []string, failed bool)
}

// checks are Dockle's, in Dockle's order, with Dockle's levels.
var checks = []check{
	{
		id: "CIS-DI-0001", level: Warn, title: "Create a user for the container",
		remediation: "Create an unprivileged user and switch to it at the end of the Dockerfile: " +
			"`RUN useradd --system --uid 10001 app` (Alpine: `adduser -S -u 10001 app`), then `USER 10001`. " +
			"A numeric UID lets Kubernetes' runAsNonRoot verify it.",
		run: checkUser,
	},
	{
		id: "CIS-DI-0005", level: Info, title: "Enable Content trust for Docker",
		remediation: "Export DOCKER_CONTENT_TRUST=1 before docker pull, build and push so that only signed images " +
			"are used, or verify signatures (cosign, notation) in the pipeline before deploying.",
		run: checkContentTrust,
	},
	{
		id: "CIS-DI-0006", level: Warn, title: "Add HEALTHCHECK instruction to the container image",
		remediation: "Add a HEALTHCHECK instruction, e.g. `HEALTHCHECK --interval=30s --timeout=3s " +
			"CMD wget -qO- http://localhost:8080/healthz || exit 1`; on Kubernetes, define liveness and readiness " +
			"probes too.",
		run: checkHealthcheck,
	},
	{
		id: "CIS-DI-0007", level: Fatal, title: "Do not use update instructions alone in the Dockerfile",
		remediation: "Run `apt-get update` in the same RUN as the install it serves: `RUN apt-get update && " +
			"apt-get install -y --no-install-recommends <pkg> && rm -rf /var/lib/apt/lists/*`, so that a cached " +
			"update layer is never paired with a later install.",
		run: historyCheck(updateAlone),
	},
	{
		id: "CIS-DI-0008", level: Info, title: "Confirm safety of setuid/setgid files",
		remediation: "Remove the setuid/setgid bits from the files the application does not need: " +
			"`RUN chmod u-s,g-s <file>` (all of them: `find / -xdev -perm /6000 -type f -exec chmod a-s {} +`), " +
			"and run the container with --security-opt no-new-privileges.",
		run: checkSetID,
	},
	{
		id: "CIS-DI-0009", level: Fatal, title: "Use COPY instead of ADD in Dockerfile",
		remediation: "Replace ADD with COPY for local files and directories. Fetch remote files with curl or wget in " +
			"a RUN step and verify their checksum (or use `ADD --checksum=sha256:<digest> <url>`); unpack archives " +
			"explicitly with tar.",
		run: checkAdd,
	},
	{
		id: "CIS-DI-0010", level: Fatal, title: "Do not store credential in ENVIRONMENT vars/files",
		remediation: "Take the secrets out of the image and rotate them: pass them at run time (docker run " +
			"--env-file, Kubernetes Secrets) and at build time with `RUN --mount=type=secret`, never with ENV, ARG " +
			"or COPY. Deleting a file in a later layer leaves it in the earlier one: rebuild without it.",
		run: checkCredentials,
	},
	{
		id: "DKL-DI-0001", level: Fatal, title: "Avoid sudo command",
		remediation: "Do not install or use sudo: run the privileged build steps before the USER instruction, as " +
			"root, and switch to the unprivileged user afterwards.",
		run: historyCheck(usesSudo),
	},
	{
		id: "DKL-DI-0002", level: Fatal, title: "Avoid sensitive directory mounting",
		remediation: "Remove the VOLUME instructions that name system directories; declare volumes only for the " +
			"application's data (e.g. VOLUME /var/lib/app).",
		run: checkVolumes,
	},
	{
		id: "DKL-DI-0003", level: Warn, title: "Avoid apt-get/apk/dist-upgrade",
		remediation: "Do not upgrade every package during the build: rebase on a newer, patched base image, or " +
			"install the fixed versions of the packages that need them (`apt-get install --only-upgrade <pkg>`, " +
			"`apk add --no-cache --upgrade <pkg>`).",
		run: historyCheck(upgrades),
	},
	{
		id: "DKL-DI-0004", level: Fatal, title: "Use apk add with --no-cache",
		remediation: "Use `apk add --no-cache <pkg>`: the package index is fetched and used without being stored in " +
			"the image, with no need for --update and rm -rf /var/cache/apk/*.",
		run: historyCheck(apkAddWithCache),
	},
	{
		id: "DKL-DI-0005", level: Fatal, title: "Clear apt-get caches",
		remediation: "End each RUN that calls apt-get install with `&& apt-get clean && rm -rf /var/lib/apt/lists/*`, " +
			"in the same RUN: a later layer hides the files but does not make the image smaller.",
		run: checkAptCache,
	},
	{
		id: "DKL-DI-0006", level: Warn, title: "Avoid latest tag",
		remediation: "Refer to the image by a version tag (app:1.4.2) or by digest (app@sha256:…), so that what " +
			"runs is reproducible and a rollback has something to go back to.",
		run: checkLatest,
	},
	{
		id: "DKL-LI-0001", level: Fatal, title: "Avoid empty password",
		remediation: "Lock every account listed: `RUN passwd -l <user>` (or put ! or * in the password field of " +
			"/etc/shadow).",
		run: checkEmptyPassword,
	},
	{
		id: "DKL-LI-0002", level: Fatal, title: "Be unique UID/GROUPs",
		remediation: "Give each user in /etc/passwd its own UID and each group in /etc/group its own GID " +
			"(usermod -u, groupmod -g), or remove the duplicate entries.",
		run: checkUniqueIDs,
	},
	{
		id: "DKL-LI-0003", level: Info, title: "Only put necessary files",
		remediation: "Keep these files out of the image: list them in .dockerignore (.git, .cache, editor files), " +
			"delete temporary files in the RUN that creates them, and copy only what the application needs from a " +
			"build stage.",
		run: checkUnneeded,
	},
}

func checkUser(in *input) ([]string, bool) {
	user, _, _ := strings.Cut(strings.TrimSpace(in.config.Config.User), ":")
	if user == "" {
		return []string{"USER is not set: the container runs as root"}, true
	}
	if user == "root" {
		return []string{"USER is root"}, true
	}
	if uid, err := strconv.ParseUint(user, 10, 32); err == nil {
		if uid == 0 {
			return []string{fmt.Sprintf("USER %s is UID 0 (root)", in.config.Config.User)}, true
		}
		return nil, false
	}
	data, _ := in.files.content("/etc/passwd")
	for _, f := range records(data) {
		if len(f) > 2 && f[0] == user && f[2] == "0" {
			return []string{fmt.Sprintf("USER %s has UID 0 in /etc/passwd", user)}, true
		}
	}
	return nil, false
}

func checkContentTrust(in *input) ([]string, bool) {
	if in.contentTrust {
		return nil, false
	}
	return []string{"DOCKER_CONTENT_TRUST is not 1 in the scanning environment: image signatures are not required"}, true
}

func checkHealthcheck(in *input) ([]string, bool) {
	hc := in.config.Config.Healthcheck
	switch {
	case hc == nil || len(hc.Test) == 0:
		return []string{"no HEALTHCHECK in the image configuration"}, true
	case hc.Test[0] == "NONE":
		return []string{"HEALTHCHECK NONE disables the health check"}, true
	}
	return nil, false
}

func checkSetID(in *input) ([]string, bool) {
	var d []string
	for _, p := range in.files.sorted(func(e entry) bool { return e.setid != 0 }) {
		e := in.files.entries[p]
		var kind []string
		bits := e.perm
		if e.setid&fs.ModeSetuid != 0 {
			kind = append(kind, "setuid")
			bits |= 04000
		}
		if e.setid&fs.ModeSetgid != 0 {
			kind = append(kind, "setgid")
			bits |= 02000
		}
		d = append(d, fmt.Sprintf("%s %s (mode %04o)", p, strings.Join(kind, "+"), uint32(bits)))
	}
	return d, len(d) > 0
}

func checkAdd(in *input) ([]string, bool) {
	var d []string
	first := true
	for _, h := range in.config.History {
		if kw, _ := instruction(h.CreatedBy); kw != "ADD" {
			continue
		}
		// The first ADD is, as a rule, the base image's root filesystem; Dockle lets it be.
		if first {
			first = false
			continue
		}
		d = append(d, display(h.CreatedBy))
	}
	return d, len(d) > 0
}

func checkVolumes(in *input) ([]string, bool) {
	var d []string
	for v := range in.config.Config.Volumes {
		if sensitiveDirs[path.Clean("/"+v)] {
			d = append(d, "VOLUME "+v)
		}
	}
	slices.Sort(d)
	return d, len(d) > 0
}

// sensitiveDirs are the directories a volume should never cover: Dockle's, from its old and new lists, the root,
// and the Docker socket.
var sensitiveDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/lib": true, "/lib64": true,
	"/proc": true, "/sbin": true, "/sys": true, "/usr": true,
	"/run/docker.sock": true, "/var/run/docker.sock": true,
}

func checkAptCache(in *input) ([]string, bool) {
	d := in.files.sorted(func(e entry) bool { return e.aptCache })
	return d, len(d) > 0
}

func checkLatest(in *input) ([]string, bool) {
	if in.ref == "" {
		return []string{"no image reference given"}, false
	}
	ref, err := name.ParseReference(in.ref)
	if err != nil {
		return []string{fmt.Sprintf("%s is not an image reference", in.ref)}, false
	}
	tag, ok := ref.(name.Tag)
	if !ok || tag.TagStr() != "latest" {
		return nil, false
	}
	if strings.HasSuffix(in.ref, ":latest") {
		return []string{in.ref + " uses the latest tag"}, true
	}
	return []string{in.ref + " has no tag, which means latest"}, true
}

func checkEmptyPassword(in *input) ([]string, bool) {
	data, ok := in.files.content("/etc/shadow")
	if !ok {
		return []string{"no /etc/shadow in the image"}, false
	}
	var d []string
	for _, f := range records(data) {
		if len(f) > 1 && f[1] == "" {
			d = append(d, fmt.Sprintf("user %s has an empty password in /etc/shadow", f[0]))
		}
	}
	return d, len(d) > 0
}

func checkUniqueIDs(in *input) ([]string, bool) {
	passwd, okp := in.files.content("/etc/passwd")
	group, okg := in.files.content("/etc/group")
	if !okp && !okg {
		return []string{"no /etc/passwd or /etc/group in the image"}, false
	}
	d := append(duplicateIDs(passwd, "UID", "/etc/passwd"), duplicateIDs(group, "GID", "/etc/group")...)
	return d, len(d) > 0
}

// duplicateIDs reports the ids (third field) that more than one name (first field) holds.
func duplicateIDs(data []byte, what, file string) []string {
	names := map[string][]string{}
	var order []string
	for _, f := range records(data) {
		if len(f) < 3 {
			continue
		}
		if names[f[2]] == nil {
			order = append(order, f[2])
		}
		names[f[2]] = append(names[f[2]], f[0])
	}
	var d []string
	for _, id := range order {
		if n := names[id]; len(n) > 1 {
			d = append(d, fmt.Sprintf("%s %s is shared by %s in %s", what, id, strings.Join(n, ", "), file))
		}
	}
	return d
}

func checkUnneeded(in *input) ([]string, bool) {
	d := in.files.sorted(func(e entry) bool { return e.unneeded })
	return d, len(d) > 0
}

// records splits a colon-separated account file into its fields, skipping blank lines, comments and NIS
// entries (+/-).
func records(data []byte) [][]string {
	var rs [][]string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		rs = append(rs, strings.Split(line, ":"))
	}
	return rs
}

// The credential check looks at the configuration's ENV, at the variables and build arguments that the history
// records (`|1 NPM_TOKEN=… /bin/sh -c …`, `ENV …`, `ARG …=…`), and at the files the walk flagged. Values are
// never reported.
func checkCredentials(in *input) ([]string, bool) {
	var d []string
	seen := map[string]bool{}
	for _, kv := range in.config.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case v == "":
		case secretName(k):
			d = append(d, fmt.Sprintf("ENV %s (value hidden)", k))
			seen[k] = true
		case urlPassword.MatchString(v):
			d = append(d, fmt.Sprintf("ENV %s holds a URL with a password (value hidden)", k))
			seen[k] = true
		}
	}
	for _, h := range in.config.History {
		masked, names := redact(h.CreatedBy)
		names = slices.DeleteFunc(names, func(k string) bool { return seen[k] })
		switch {
		case len(names) > 0:
			d = append(d, fmt.Sprintf("build step sets %s: %s", strings.Join(names, ", "), short(masked)))
		case urlPassword.MatchString(h.CreatedBy):
			d = append(d, "build step has a URL with a password: "+short(masked))
		}
	}
	for _, p := range in.files.sorted(func(e entry) bool { return e.secret != "" }) {
		d = append(d, fmt.Sprintf("%s (%s)", p, in.files.entries[p].secret))
	}
	return d, len(d) > 0
}

var (
	// assignment matches NAME=value in a command line, the value quoted or not; group 1 is the name, group 2 the
	// value.
	assignment = regexp.MustCompile(`(?:^|[\s;&|(=])([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s;&|)]*)`)
	// urlPassword matches a URL with credentials in it (https://user:password@host); group 1 ends before the
	// password.
	urlPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@`)
)

// redact hides, in a history entry, the values of the variables whose names look secret and the passwords of
// URLs, and returns the names. Every history entry a report shows goes through it.
func redact(createdBy string) (masked string, names []string) {
	var b strings.Builder
	last := 0
	seen := map[string]bool{}
	for _, m := range assignment.FindAllStringSubmatchIndex(createdBy, -1) {
		k, v := createdBy[m[2]:m[3]], createdBy[m[4]:m[5]]
		if !secretName(k) || !literal(v) {
			continue
		}
		if !seen[k] {
			seen[k] = true
			names = append(names, k)
		}
		b.WriteString(createdBy[last:m[4]])
		b.WriteString("****")
		last = m[5]
	}
	b.WriteString(createdBy[last:])
	return urlPassword.ReplaceAllString(b.String(), "${1}****@"), names
}

// display is a history entry as a report shows it: secrets hidden, blanks squeezed, length bounded.
func display(createdBy string) string {
	masked, _ := redact(createdBy)
	return short(masked)
}

// literal says whether a value written in a command is a value at all: not empty and not a reference to another
// variable or a command's output, which leaves no secret in the history.
func literal(v string) bool {
	v = strings.Trim(v, `"'`)
	return v != "" && v[0] != '$'
}

// Secret variable names. Dockle matches PASS, PASSWD, PASSWORD, SECRET, KEY, ACCESS, TOKEN anywhere in the name;
// that flags APT_KEY_DONT_WARN_ON_DANGEROUS_USAGE, KEYCLOAK_VERSION or NGINX_ACCESS_LOG. Here the strong words
// count in any part of the name (DB_PASSWORD, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY), the weak ones only at its end
// or before ID (API_KEY, DB_PASS, AWS_ACCESS_KEY_ID). *_FILE and *_PATH name a file that holds the secret (the
// Docker secrets convention), and public keys are public.
var (
	strongSecretWords = []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY"}
	weakSecretWords   = []string{"KEY", "PASS"}
	acceptedKeys      = map[string]bool{"GPG_KEY": true, "GPG_KEYS": true}
)

func secretName(k string) bool {
	k = strings.ToUpper(k)
	if acceptedKeys[k] || strings.HasSuffix(k, "_FILE") || strings.HasSuffix(k, "_PATH") {
		return false
	}
	parts := strings.FieldsFunc(k, func(r rune) bool { return r == '_' || r == '-' || r == '.' })
	if slices.Contains(parts, "PUBLIC") {
		return false
	}
	for i, p := range parts {
		for _, w := range strongSecretWords {
			if strings.HasSuffix(p, w) {
				return true
			}
		}
		if slices.Contains(weakSecretWords, p) && (i == len(parts)-1 || parts[i+1] == "ID") {
			return true
		}
	}
	return false
}

// instruction returns the Dockerfile keyword of a history entry and the rest of it. The classic builder writes
// "/bin/sh -c #(nop)  ENV A=b" for instructions that run nothing and "/bin/sh -c apt-get …" for RUN; BuildKit
// writes "ENV A=b" and "RUN /bin/sh -c apt-get … # buildkit". Entries that are comments ("# debian.sh …") have
// no keyword.
func instruction(createdBy string) (keyword, rest string) {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(createdBy), "# buildkit"))
	if _, after, ok := strings.Cut(s, "#(nop)"); ok {
		s = strings.TrimSpace(after)
		kw, rest, _ := strings.Cut(s, " ")
		return strings.ToUpper(kw), strings.TrimSpace(rest)
	}
	if strings.HasPrefix(s, "#") {
		return "", s
	}
	kw, r, _ := strings.Cut(s, " ")
	if dockerfileKeywords[kw] {
		return kw, strings.TrimSpace(r)
	}
	return "RUN", s
}

var dockerfileKeywords = map[string]bool{
	"ADD": true, "ARG": true, "CMD": true, "COPY": true, "ENTRYPOINT": true, "ENV": true, "EXPOSE": true,
	"FROM": true, "HEALTHCHECK": true, "LABEL": true, "MAINTAINER": true, "ONBUILD": true, "RUN": true,
	"SHELL": true, "STOPSIGNAL": true, "USER": true, "VOLUME": true, "WORKDIR": true,
}

// historyCheck turns a test on the shell commands of one RUN into a check that lists the RUN entries of the
// history that fail it.
func historyCheck(bad func(commands [][]string) bool) func(*input) ([]string, bool) {
	return func(in *input) ([]string, bool) {
		var d []string
		for _, h := range in.config.History {
			if kw, cmd := instruction(h.CreatedBy); kw == "RUN" && bad(commands(cmd)) {
				d = append(d, display(h.CreatedBy))
			}
		}
		return d, len(d) > 0
	}
}

var commandSeparators = regexp.MustCompile(`&&|\|\||[;|\n]`)

// commands splits a shell command line into its simple commands, each a list of words, as Dockle does: on
// && || ; | and newlines, then on blanks. Quotes and parentheses around words are dropped.
func commands(line string) [][]string {
	var cs [][]string
	for _, seg := range commandSeparators.Split(line, -1) {
		var words []string
		for _, w := range strings.Fields(seg) {
			if w = strings.Trim(w, `"'()\`); w != "" {
				words = append(words, w)
			}
		}
		if len(words) > 0 {
			cs = append(cs, words)
		}
	}
	return cs
}

// has says whether a command holds one of the words, as a word or as a path's last element (/usr/bin/sudo).
func has(cmd []string, words ...string) bool {
	for _, w := range cmd {
		if slices.Contains(words, w) || (strings.Contains(w, "/") && slices.Contains(words, path.Base(w))) {
			return true
		}
	}
	return false
}

func usesSudo(cs [][]string) bool {
	return slices.ContainsFunc(cs, func(c []string) bool { return has(c, "sudo") })
}

var aptTools = []string{"apt-get", "apt", "aptitude"}

func upgrades(cs [][]string) bool {
	return slices.ContainsFunc(cs, func(c []string) bool {
		return has(c, aptTools...) && has(c, "upgrade", "dist-upgrade", "full-upgrade") ||
			has(c, "apk") && has(c, "upgrade")
	})
}

func apkAddWithCache(cs [][]string) bool {
	return slices.ContainsFunc(cs, func(c []string) bool {
		return has(c, "apk") && has(c, "add") && !has(c, "--no-cache")
	})
}

// updateAlone is true when a RUN updates the apt lists and installs or upgrades nothing after.
func updateAlone(cs [][]string) bool {
	updated := false
	for _, c := range cs {
		if !has(c, aptTools...) {
			continue
		}
		if has(c, "update") {
			updated = true
		}
		if updated && has(c, "install", "upgrade", "dist-upgrade", "full-upgrade") {
			return false
		}
	}
	return updated
}

// short keeps a history entry readable in a report.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= 200 {
		return s
	}
	cut := 197
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
