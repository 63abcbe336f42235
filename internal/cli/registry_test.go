package cli_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/cli"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/registry/credstore"
	"github.com/codomyrmex/containerization/registry/retention"
)

// canary is the distribution registry's password: no output of any command may show it.
const canary = "canary-Pa55word-4f1e"

// registrySession runs myrmex registry commands with an isolated configuration (Myrmex's credential store and
// the Docker config in temporary directories), and checks when the test ends that no output showed the
// password.
type registrySession struct {
	t       *testing.T
	outputs []string
}

func newRegistrySession(t *testing.T) *registrySession {
	t.Helper()
	t.Setenv(credstore.EnvConfigDir, t.TempDir())
	t.Setenv(credstore.EnvKey, "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	s := &registrySession{t: t}
	t.Cleanup(func() {
		for _, out := range s.outputs {
			if strings.Contains(out, canary) {
				t.Errorf("an output shows the password:\n%s", out)
			}
		}
	})
	return s
}

// run runs myrmex with stdin and records its outputs.
func (s *registrySession) run(stdin string, args ...string) result {
	s.t.Helper()
	r := myrmexIn(s.t, strings.NewReader(stdin), args...)
	s.outputs = append(s.outputs, r.stdout, r.stderr)
	return r
}

// expect runs myrmex and fails the test unless it exits with code.
func (s *registrySession) expect(code int, stdin string, args ...string) result {
	s.t.Helper()
	r := s.run(stdin, args...)
	if r.code != code {
		s.t.Fatalf("myrmex %q = exit %d, want %d; stdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// list returns the lines of myrmex registry list args.
func (s *registrySession) list(stdin string, args ...string) []string {
	s.t.Helper()
	r := s.expect(0, stdin, append([]string{"registry", "list"}, args...)...)
	return strings.Fields(r.stdout)
}

// removeImage removes ref from the engine when the test ends (a tag of an image others use is only untagged).
func removeImage(t *testing.T, eng *engine.Client, ref string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := eng.API().ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true}); err != nil {
			t.Errorf("cleanup: removing image %s: %v", ref, err)
		}
	})
}

func TestRegistry(t *testing.T) {
	eng := testEngine(t)
	s := newRegistrySession(t)
	dist := testenv.Distribution(t, testenv.DistributionOptions{Password: canary})
	mem := testenv.InProcess(t)
	pw := canary + "\n"
	auth := []string{"--ca-file", dist.CAFile, "--username", dist.Username, "--password-stdin"}
	withAuth := func(args ...string) []string { return append(args, auth...) }

	// Push from the engine, with the login on the command line.
	r := s.expect(0, pw, withAuth("registry", "push", testimages.Busybox, "--registry", dist.Host,
		"--to", "clitest/busybox:1", "--tag", "2", "-o", "json")...)
	var fields map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fields); err != nil {
		t.Fatalf("push -o json: %v\n%s", err, r.stdout)
	}
	for _, f := range []string{"operation", "image_name", "registry_url", "success", "image_digest", "tags", "size_mb", "error_message"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("push -o json has no field %q: %s", f, r.stdout)
		}
	}
	var pushed containerization.RegistryResult
	if err := json.Unmarshal([]byte(r.stdout), &pushed); err != nil {
		t.Fatal(err)
	}
	if !pushed.Success || !strings.HasPrefix(pushed.ImageDigest, "sha256:") || !slices.Equal(pushed.Tags, []string{"1", "2"}) ||
		pushed.Reference != dist.Ref("clitest/busybox:1") {
		t.Errorf("push -o json = %+v, want success, a digest, tags [1 2] and reference %s", pushed, dist.Ref("clitest/busybox:1"))
	}
	digest := pushed.ImageDigest

	// The table prints the digest, and no progress goes to a stderr that is not a terminal.
	r = s.expect(0, pw, withAuth("registry", "push", testimages.Web, "--to", dist.Ref("clitest/web:a"))...)
	if !strings.Contains(r.stdout, dist.Ref("clitest/web:a")) || !strings.Contains(r.stdout, "sha256:") || r.stderr != "" {
		t.Errorf("push stdout = %q, stderr = %q; want the reference and its digest, and no stderr", r.stdout, r.stderr)
	}
	webDigest := strings.Fields(r.stdout)[1]

	if got := s.list(pw, withAuth(dist.Ref("clitest/busybox"))...); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("list clitest/busybox = %q, want [1 2]", got)
	}
	if got := s.list(pw, withAuth("--registry", dist.Host)...); !slices.Equal(got, []string{"clitest/busybox", "clitest/web"}) {
		t.Errorf("list --registry (catalog) = %q, want [clitest/busybox clitest/web]", got)
	}

	t.Run("tag and delete", func(t *testing.T) {
		r := s.expect(0, pw, withAuth("registry", "tag", dist.Ref("clitest/busybox:1"), "3", "4")...)
		if strings.Count(r.stdout, digest) != 2 {
			t.Errorf("tag stdout = %q, want two lines with %s", r.stdout, digest)
		}
		if got := s.list(pw, withAuth(dist.Ref("clitest/busybox"))...); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
			t.Errorf("list after tag = %q, want [1 2 3 4]", got)
		}
		// A tag alone: the other tags of the same image stay.
		s.expect(0, pw, withAuth("registry", "delete", dist.Ref("clitest/busybox:4"))...)
		if got := s.list(pw, withAuth(dist.Ref("clitest/busybox"))...); !slices.Equal(got, []string{"1", "2", "3"}) {
			t.Errorf("list after deleting tag 4 = %q, want [1 2 3]", got)
		}
		// By digest: the manifest and every tag naming it.
		s.expect(0, pw, withAuth("registry", "tag", dist.Ref("clitest/web:a"), "b")...)
		r = s.expect(0, pw, withAuth("registry", "delete", dist.Ref("clitest/web@"+webDigest), "-o", "json")...)
		var res containerization.RegistryResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("delete -o json: %v\n%s", err, r.stdout)
		}
		if res.ImageDigest != webDigest || !slices.Equal(res.Tags, []string{"a", "b"}) {
			t.Errorf("delete by digest = %+v, want digest %s and tags [a b]", res, webDigest)
		}
		if got := s.list(pw, withAuth(dist.Ref("clitest/web"))...); len(got) != 0 {
			t.Errorf("list after deleting the digest = %q, want no tags", got)
		}
		s.expect(cli.ExitNotFound, pw, withAuth("registry", "delete", dist.Ref("clitest/web@"+webDigest))...)
	})

	t.Run("copy", func(t *testing.T) {
		// From the TLS registry with a login to the plain-HTTP one without, and back with a login for the
		// destination only.
		r := s.expect(0, pw, withAuth("registry", "copy", dist.Ref("clitest/busybox:1"), "http://"+mem.Ref("mirror/busybox:1"), "-o", "json")...)
		var res containerization.RegistryResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("copy -o json: %v\n%s", err, r.stdout)
		}
		if res.ImageDigest != digest || res.Reference != mem.Ref("mirror/busybox:1") {
			t.Errorf("copy = %+v, want digest %s at %s", res, digest, mem.Ref("mirror/busybox:1"))
		}
		s.expect(0, pw, "registry", "copy", "http://"+mem.Ref("mirror/busybox:1"), dist.Ref("clitest/copied:1"),
			"--ca-file", dist.CAFile, "--dest-username", dist.Username, "--dest-password-stdin")
		if got := s.list(pw, withAuth(dist.Ref("clitest/copied"))...); !slices.Equal(got, []string{"1"}) {
			t.Errorf("list clitest/copied = %q, want [1]", got)
		}
		s.expect(cli.ExitUsage, pw+pw, withAuth("registry", "copy", dist.Ref("clitest/busybox:1"), dist.Ref("clitest/x:1"),
			"--dest-username", dist.Username, "--dest-password-stdin")...)
	})

	t.Run("pull", func(t *testing.T) {
		local := dist.Ref("clitest/busybox:2")
		removeImage(t, eng, local)
		r := s.expect(0, pw, withAuth("registry", "pull", local)...)
		if !strings.Contains(r.stdout, digest) {
			t.Errorf("pull stdout = %q, want %s", r.stdout, digest)
		}
		if ok, err := eng.ImageExists(t.Context(), local); !ok || err != nil {
			t.Errorf("ImageExists(%s) after pull = %v, %v; want true", local, ok, err)
		}
	})

	t.Run("login and logout", func(t *testing.T) {
		store := filepath.Join(os.Getenv(credstore.EnvConfigDir), credstore.FileName)
		stored := []string{"registry", "push", testimages.Busybox, "--to", dist.Ref("clitest/stored:1"), "--ca-file", dist.CAFile}

		s.expect(cli.ExitUnauthorized, "", stored...)
		s.expect(cli.ExitUsage, "", "registry", "login", dist.Host, "--ca-file", dist.CAFile)
		s.expect(cli.ExitUnauthorized, "wrong-"+canary+"\n", withAuth("registry", "login", dist.Host)...)
		if _, err := os.Stat(store); !os.IsNotExist(err) {
			t.Errorf("Stat(%s) after a refused login = %v, want it missing", store, err)
		}

		r := s.expect(0, pw, withAuth("registry", "login", dist.Host, "--debug")...)
		if !strings.Contains(r.stdout, "logged in to "+dist.Host) {
			t.Errorf("login stdout = %q, want logged in to %s", r.stdout, dist.Host)
		}
		got, ok, err := openStore(t).Get(dist.Host)
		if err != nil || !ok || got.Username != dist.Username || got.Password != canary {
			t.Errorf("stored login for %s = %v, %v, %v; want %s and the password", dist.Host, got, ok, err, dist.Username)
		}

		// Commands given no username use the stored login.
		s.expect(0, "", stored...)
		if got := s.list("", dist.Ref("clitest/stored"), "--ca-file", dist.CAFile); !slices.Equal(got, []string{"1"}) {
			t.Errorf("list with the stored login = %q, want [1]", got)
		}

		if r := s.expect(0, "", "registry", "logout", dist.Host); !strings.Contains(r.stdout, "logged out of "+dist.Host) {
			t.Errorf("logout stdout = %q, want logged out of %s", r.stdout, dist.Host)
		}
		if r := s.expect(0, "", "registry", "logout", dist.Host); !strings.Contains(r.stdout, "not logged in") {
			t.Errorf("second logout stdout = %q, want not logged in", r.stdout)
		}
		s.expect(cli.ExitUnauthorized, "", stored...)
	})

	t.Run("--password warns", func(t *testing.T) {
		r := s.expect(0, "", "registry", "list", dist.Ref("clitest/busybox"), "--ca-file", dist.CAFile,
			"--username", dist.Username, "--password", canary)
		if !strings.Contains(r.stderr, "--password-stdin") {
			t.Errorf("list --password stderr = %q, want a warning naming --password-stdin", r.stderr)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			want  int
		}{
			{"missing repository", pw, withAuth("registry", "list", dist.Ref("clitest/nope")), cli.ExitNotFound},
			{"missing tag", pw, withAuth("registry", "pull", dist.Ref("clitest/busybox:nope")), cli.ExitNotFound},
			{"unknown host", "", []string{"registry", "list", "registry.invalid/x"}, cli.ExitUnavailable},
			{"unknown host, login", pw, withAuth("registry", "login", "registry.invalid"), cli.ExitUnavailable},
			{"untrusted CA", pw, []string{"registry", "list", dist.Ref("clitest/busybox"), "-u", dist.Username, "--password-stdin"}, cli.ExitUnavailable},
			{"untrusted CA, login", pw, []string{"registry", "login", dist.Host, "-u", dist.Username, "--password-stdin"}, cli.ExitUnavailable},
			{"wrong password", "wrong\n", withAuth("registry", "list", dist.Ref("clitest/busybox")), cli.ExitUnauthorized},
			{"bad reference", pw, withAuth("registry", "pull", dist.Host+"/Bad/Ref:1"), cli.ExitUsage},
			{"bad tag", pw, withAuth("registry", "tag", dist.Ref("clitest/busybox:1"), "no:colons"), cli.ExitUsage},
			{"bad type", "", []string{"registry", "list", "--registry", dist.Host, "--type", "quay"}, cli.ExitUsage},
			{"no REF", "", []string{"registry", "pull"}, cli.ExitUsage},
			{"catalog without --registry", "", []string{"registry", "list"}, cli.ExitUsage},
			{"--password-stdin without --username", pw, []string{"registry", "list", dist.Ref("x"), "--password-stdin"}, cli.ExitUsage},
			{"--username without a password", "", []string{"registry", "list", dist.Ref("x"), "-u", "me"}, cli.ExitUsage},
			{"empty stdin", "", withAuth("registry", "list", dist.Ref("x")), cli.ExitUsage},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.run(tc.stdin, tc.args...)
				if r.code != tc.want {
					t.Errorf("myrmex %q = exit %d, want %d; stderr:\n%s", tc.args, r.code, tc.want, r.stderr)
				}
				if !strings.HasPrefix(r.stderr, "myrmex: ") || r.stdout != "" {
					t.Errorf("myrmex %q: stdout %q, stderr %q; want nothing and an error", tc.args, r.stdout, r.stderr)
				}
			})
		}
	})
}

func TestRegistryRetention(t *testing.T) {
	testEngine(t)
	s := newRegistrySession(t)
	dist := testenv.Distribution(t, testenv.DistributionOptions{Password: canary})
	pw := canary + "\n"
	auth := []string{"--registry", dist.Host, "--ca-file", dist.CAFile, "--username", dist.Username, "--password-stdin"}

	for _, push := range []struct{ image, to string }{
		{testimages.Busybox, "ret/app:keep-1"},
		{testimages.Web, "ret/app:old-1"},
		{testimages.Web, "other/app:old-1"},
	} {
		s.expect(0, pw, append([]string{"registry", "push", push.image, "--to", push.to}, auth...)...)
	}
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	err := os.WriteFile(policy, []byte(`rules:
  - repositories: {pattern: "ret/**"}
    tags: {pattern: "keep-*"}
    retain: {always: true}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	// A plan deletes nothing; ret/app's old-1 would go; other/app is no rule's business.
	r := s.expect(0, pw, append([]string{"registry", "retention", "plan", "-f", policy}, auth...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if header := strings.Fields(lines[0]); !slices.Equal(header, []string{"REPOSITORY", "DIGEST", "TAGS", "PUSHED", "KEEP/DELETE", "REASON"}) {
		t.Errorf("plan header = %q", lines[0])
	}
	want := map[string]string{"other/app old-1": "keep", "ret/app keep-1": "keep", "ret/app old-1": "delete"}
	got := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		// PUSHED is a date and a time, or unknown: the action is the first keep or delete after it.
		if i := slices.IndexFunc(f[3:], func(s string) bool { return s == "keep" || s == "delete" }); i >= 0 {
			got[f[0]+" "+f[2]] = f[3+i]
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("plan = %v, want %v; stdout:\n%s", got, want, r.stdout)
	}
	if tags := s.list(pw, append([]string{dist.Ref("ret/app")}, auth[2:]...)...); !slices.Equal(tags, []string{"keep-1", "old-1"}) {
		t.Errorf("tags after plan = %q, want [keep-1 old-1]", tags)
	}

	// Apply, for one repository, as JSON.
	r = s.expect(0, pw, append([]string{"registry", "retention", "apply", "-f", policy, "ret/app", "-o", "json"}, auth...)...)
	var report retention.Report
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, r.stdout)
	}
	if report.DryRun || report.Kept != 1 || report.Deleted != 1 {
		t.Errorf("apply report = dry run %v, %d kept, %d deleted; want applied, 1 and 1", report.DryRun, report.Kept, report.Deleted)
	}
	if tags := s.list(pw, append([]string{dist.Ref("ret/app")}, auth[2:]...)...); !slices.Equal(tags, []string{"keep-1"}) {
		t.Errorf("tags after apply = %q, want [keep-1]", tags)
	}
	if tags := s.list(pw, append([]string{dist.Ref("other/app")}, auth[2:]...)...); !slices.Equal(tags, []string{"old-1"}) {
		t.Errorf("other/app after apply = %q, want [old-1]", tags)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - repositories: {pattern: \"**\"}\n    tags: {pattern: \"**\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.expect(cli.ExitUsage, pw, append([]string{"registry", "retention", "apply", "-f", bad}, auth...)...)
	s.expect(cli.ExitUsage, "", "registry", "retention", "plan", "--registry", dist.Host)
}

func openStore(t *testing.T) *credstore.Store {
	t.Helper()
	store, err := credstore.Open(credstore.Options{})
	if err != nil {
		t.Fatalf("credstore.Open() = %v", err)
	}
	return store
}

// registry add|ls|show|rm and retention run through the CLI: wrong input refused with its exit code before
// anything is saved, the saved name taking the place of the URL, CA and login in push and list, and the
// retention policy saved with it applied by name.
func TestSavedRegistryCommands(t *testing.T) {
	testEngine(t)
	s := newRegistrySession(t)
	dist := testenv.Distribution(t, testenv.DistributionOptions{Password: canary})
	pw := canary + "\n"
	policy := filepath.Join(t.TempDir(), "keep.yaml")
	if err := os.WriteFile(policy, []byte("rules:\n  - repositories: {pattern: \"**\"}\n    tags: {pattern: \"keep-*\"}\n    retain: {always: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules: [{retain: {}}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	add := []string{"registry", "add", "dist", "--url", dist.URL(), "--ca-file", dist.CAFile, "--username", dist.Username, "--password-stdin"}

	s.expect(cli.ExitUsage, "", "registry", "add", "dist")                                   // no --url
	s.expect(cli.ExitUsage, pw, append(add, "--retention", bad)...)                          // a bad retention policy
	s.expect(cli.ExitUsage, pw, "registry", "add", "a.b", "--url", dist.URL(), "--no-check") // a name that reads as a host
	s.expect(cli.ExitUnauthorized, "wrong\n", add...)                                        // a wrong password
	if r := s.expect(0, "", "registry", "ls", "-o", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("after refused adds, ls = %s", r.stdout)
	}
	s.expect(0, pw, append(add, "--retention", policy)...)
	s.expect(cli.ExitConflict, pw, add...)
	r := s.expect(0, "", "registry", "ls")
	if !strings.Contains(r.stdout, "dist") || !strings.Contains(r.stdout, dist.Username) {
		t.Errorf("ls = %s", r.stdout)
	}

	// The name in place of the URL, CA and login.
	s.expect(0, "", "registry", "push", testimages.Busybox, "--to", "saved/app:keep-1", "--registry", "dist")
	s.expect(0, "", "registry", "push", testimages.Web, "--to", "saved/app:old-1", "--registry", "dist")
	var show containerization.ContainerRegistry
	r = s.expect(0, "", "registry", "show", "dist", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil || !slices.Equal(show.Repositories, []string{"saved/app"}) || show.RetentionPolicy == nil {
		t.Errorf("show = %+v, %v\n%s", show, err, r.stdout)
	}
	r = s.expect(0, "", "registry", "retention", "run", "dist")
	if !strings.Contains(r.stderr, "dry run") {
		t.Errorf("retention run without --apply: %s", r.stderr)
	}
	if tags := s.list("", "saved/app", "--registry", "dist"); !slices.Equal(tags, []string{"keep-1", "old-1"}) {
		t.Errorf("after a dry run: tags %q, want both", tags)
	}
	s.expect(0, "", "registry", "retention", "run", "dist", "--apply")
	if tags := s.list("", "saved/app", "--registry", "dist"); !slices.Equal(tags, []string{"keep-1"}) {
		t.Errorf("after retention run --apply: tags %q, want [keep-1]", tags)
	}
	s.expect(0, "", "registry", "rm", "dist")
	s.expect(cli.ExitNotFound, "", "registry", "rm", "dist")
	s.expect(cli.ExitNotFound, "", "registry", "retention", "run", "dist")
}
