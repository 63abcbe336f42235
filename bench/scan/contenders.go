package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codomyrmex/containerization/bench/internal/benchkit"
	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/internal/testimages"
	"github.com/codomyrmex/containerization/scan/vulndb"
)

// bench holds what every contender shares: the tools, the archive and what the setup made.
type bench struct {
	cfg      config
	self     string // this program, which runs Myrmex's scans as its children
	syft     string
	grype    grypeTools
	launcher string // see runChild
	root     string // the main module's directory
	tmp      string // the run's directory, removed at the end
	runID    string
	order    *benchkit.Order // the contenders' order in every round

	img          testimages.DebianImage
	archive      string // docker save of the image: what every contender reads
	archiveBytes int64
	dbDir        string // the OSV database of the full scan
	fixtureIDs   map[string]bool
	grypeDB      string // Grype's database directory (GRYPE_DB_CACHE_DIR), from the same advisories
	warmCache    string // Myrmex's layer cache, filled by the untimed first inventory
	fullCache    string // Myrmex's cache (layers and scan facts), filled by the untimed first full scan
	syftCache    string // Syft's cache directory, kept from run to run

	// ref holds the untimed first run of each tool, which every round is checked against.
	ref   map[string]*scanOutput
	notes []string
}

// The reference runs.
const (
	refMyrmex = "myrmex"
	refSyft   = "syft"
	refFull   = "full" // the first full scan's findings
	refGrype  = "grype"
)

// A contender runs one scan per round, in a child process, in a directory of its own under the run's (its
// TMPDIR, its caches when they start empty, its output), which is removed after the round.
type contender struct {
	key, title, how string
	tool            string // "Myrmex" or "Syft"
	caveat          string // what the row is not: said beside it in the results
	cmd             func(dir string) *exec.Cmd
	// check reads the round's output and verifies it; any error is fatal.
	check func(dir string, stdout []byte) (*scanOutput, error)
}

// sample is one timed round of a contender.
type sample struct {
	seconds, user, system float64
	maxRSS                int64
	scanSeconds           float64 // in the process, Myrmex only
	packages              int
}

// setup makes sure the engine holds the Debian test image, saves it once to the archive every contender reads,
// imports the full scan's advisory database, and runs each tool once, untimed: those runs are the references the
// rounds are checked against, fill Myrmex's warm layer cache and Syft's cache directory, and bring both programs
// and the archive into the page cache.
func (b *bench) setup(ctx context.Context, rep *report) error {
	t := time.Now()
	eng, err := engine.New(ctx, engine.Options{Host: b.cfg.dockerHost})
	if err != nil {
		return err
	}
	defer eng.Close()
	rep.Machine.EngineVersion = engineVersion(ctx, eng)
	if b.img, err = testimages.EnsureDebian(ctx, eng, testimages.DebianOptions{}); err != nil {
		return fmt.Errorf("the Debian test image: %w", err)
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "testimages.EnsureDebian (cached when the engine holds the image)", Seconds: time.Since(t).Seconds()})

	t = time.Now()
	b.archive = filepath.Join(b.tmp, "debian-scan.tar")
	if err := eng.SaveImageFile(ctx, b.img.Ref, b.archive); err != nil {
		return err
	}
	fi, err := os.Stat(b.archive)
	if err != nil {
		return err
	}
	b.archiveBytes = fi.Size()
	img, err := tarball.ImageFromPath(b.archive, nil)
	if err != nil {
		return fmt.Errorf("reading the archive: %w", err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if id.String() != b.img.ID || len(layers) != len(b.img.Layers) {
		return fmt.Errorf("the archive holds image %s with %d layers, want %s with %d", id, len(layers), b.img.ID, len(b.img.Layers))
	}
	rep.Image = imageInfo{Reference: b.img.Ref, ID: b.img.ID, Layers: len(layers), ArchiveBytes: b.archiveBytes,
		Debian: b.img.Debian.PointRelease, Manifest: map[string]int{}}
	for _, p := range b.manifestPackages() {
		rep.Image.Manifest[p.kind]++
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "save the image to the archive (engine's docker save)", Seconds: time.Since(t).Seconds()})
	benchkit.Logf("image %s (%s), %d layers, archive %.1f MB", b.img.Ref, b.img.ID, len(layers), float64(b.archiveBytes)/1e6)

	if err := b.databases(ctx, rep); err != nil {
		return err
	}

	// The references: Myrmex's inventory into the warm cache, a full scan, Syft into its kept cache directory.
	b.ref = map[string]*scanOutput{}
	b.warmCache = filepath.Join(b.tmp, "myrmex-warm-cache")
	b.fullCache = filepath.Join(b.tmp, "myrmex-full-cache")
	b.syftCache = filepath.Join(b.tmp, "syft-cache")
	for _, r := range []struct {
		name, step string
		c          contender
	}{
		{refMyrmex, "Myrmex inventory, filling the warm cache", b.myrmex("ref-inventory", "", kindInventory, b.warmCache, nil)},
		{refFull, "Myrmex full scan, filling the re-scan's cache", b.myrmex("ref-full", "", kindFull, b.fullCache, nil)},
		{refSyft, "Syft, with the kept cache directory", b.syftScan("ref-syft", "", b.syftCache)},
		{refGrype, "Grype", b.grypeScan("ref-grype", "")},
	} {
		t = time.Now()
		out, s, err := b.runOnce(r.c)
		if err != nil {
			return fmt.Errorf("the untimed first run of %s: %w", r.step, err)
		}
		b.ref[r.name] = out
		rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "untimed first run: " + r.step, Seconds: time.Since(t).Seconds()})
		benchkit.Logf("reference %-40s %6.2fs  cpu %5.2fs  peak RSS %4.0f MB  %d packages", r.step, s.seconds, s.user+s.system,
			float64(s.maxRSS)/1e6, s.packages)
	}
	my, full, sy := b.ref[refMyrmex], b.ref[refFull], b.ref[refSyft]
	if my.cached != 0 || my.layers != len(layers) || len(my.packages) == 0 {
		return fmt.Errorf("Myrmex's first inventory: %d packages, %d of %d layers from the cache, want some packages, none cached, %d layers",
			len(my.packages), my.cached, my.layers, len(layers))
	}
	if full.scanned != len(my.packages) || len(full.findings) == 0 || full.compliance == nil {
		return fmt.Errorf("Myrmex's first full scan: %d packages scanned (the inventory found %d), %d findings, compliance %v",
			full.scanned, len(my.packages), len(full.findings), full.compliance)
	}
	rep.FullScan = fullScan{Scanned: full.scanned, Findings: full.findings, ComplianceScore: *full.compliance}
	gr := b.ref[refGrype]
	if len(gr.findings) == 0 || gr.tool != "grype "+grypeVersion {
		return fmt.Errorf("Grype's first run: %d findings, written by %q, want grype %s", len(gr.findings), gr.tool, grypeVersion)
	}
	rep.Machine.GrypeDescriptor = gr.tool
	if len(sy.packages) == 0 || sy.tool != "syft "+syftVersion {
		return fmt.Errorf("Syft's first run: %d packages, written by %q, want syft %s", len(sy.packages), sy.tool, syftVersion)
	}
	rep.Machine.SyftDescriptor = sy.tool
	n, size := dirSize(b.warmCache)
	b.notes = append(b.notes, fmt.Sprintf("Myrmex's layer cache after one scan of the image: %d entries, %.1f MB (the filtered layers: "+
		"only the files the extractors read), beside the archive's %.1f MB.", n, float64(size)/1e6, float64(b.archiveBytes)/1e6))
	if n := countFiles(b.syftCache); n == 0 {
		b.notes = append(b.notes, "Syft's cache directory held no file after its first run (only the empty directories of its Go, "+
			"JavaScript and Python license resolvers): Syft caches what it downloads (licenses, Maven metadata, all off by default), "+
			"never a catalog, so *Syft, warm* differs from *Syft, cold* in nothing but the cache directory it is given; both read an "+
			"archive the page cache holds, as every contender does.")
	} else {
		b.notes = append(b.notes, fmt.Sprintf("Syft's cache directory held %d files after its first run; *Syft, warm* keeps them.", n))
	}
	return nil
}

// contenders are the five scans, in the order of the first round.
func (b *bench) contenders() []contender {
	return []contender{
		b.myrmex("inventory-cold", "Myrmex inventory, cold", kindInventory, "",
			func(out *scanOutput) error {
				if out.cached != 0 {
					return fmt.Errorf("%d layers came from the cache, want none", out.cached)
				}
				return nil
			}),
		withCaveat(b.myrmex("inventory-warm", warmTitle, kindInventory, b.warmCache,
			func(out *scanOutput) error {
				if out.cached != out.layers {
					return fmt.Errorf("%d of %d layers came from the cache, want all", out.cached, out.layers)
				}
				return nil
			}), warmCaveat),
		b.myrmex("full", "Myrmex full scan, cold", kindFull, "", nil),
		withCaveat(b.myrmex("full-warm", "Myrmex full scan, warm re-scan", kindFull, b.fullCache,
			func(*scanOutput) error {
				if n := countFiles(filepath.Join(b.fullCache, "scan-facts")); n != 1 {
					return fmt.Errorf("the cache holds %d scan facts, want the first full scan's one", n)
				}
				return nil
			}), fullWarmCaveat),
		b.grypeScan("grype", "Grype, cold"),
		b.syftScan("syft-cold", "Syft, cold", ""),
		withCaveat(b.syftScan("syft-warm", "Syft, warm", b.syftCache), syftWarmCaveat),
	}
}

// The warm inventory measures Myrmex's layer cache, which Syft has no equivalent of: its row and every ratio it is
// in say so, in the row's name and its caveat.
const (
	warmTitle  = "Myrmex inventory, warm: Myrmex's layer cache (Syft has none)"
	warmCaveat = "Myrmex's layer cache against a scanner without one: the filtered layers come from the cache an earlier scan of " +
		"the image filled; every archive layer is still read and hashed, to check its diff ID, but not filtered again. Syft has no layer cache, so this row measures the cache, not the " +
		"two scanners doing the same work."
	fullWarmCaveat = "Myrmex's cache of what a scan learned from the layers, against scanners without one: the archive file is " +
		"unchanged (its identity: path, inode, size, mtime, ctime), so no layer is read and only the advisory match runs " +
		"again; Grype and Syft catalog every layer again."
	syftWarmCaveat = "Syft has no layer cache: its warm run differs from its cold one only in the cache directory it is given " +
		"(kept from earlier runs), and reads and catalogs every layer again."
)

func withCaveat(c contender, caveat string) contender {
	c.caveat = caveat
	return c
}

// myrmex is a contender that runs one of Myrmex's scans in a child process. An empty cache is the round's own
// empty directory; extra checks an inventory's output beyond its packages.
func (b *bench) myrmex(key, title, kind, cache string, extra func(*scanOutput) error) contender {
	c := contender{key: key, title: title, tool: "Myrmex"}
	switch {
	case kind == kindInventory && cache == "":
		c.how = "inventory.Scan of registry.OpenImage(\"docker-archive:FILE\") (as Myrmex's scans open an archive), every extractor, Options.Cache an empty directory (the layer cache is written)"
	case kind == kindInventory:
		c.how = "inventory.Scan of registry.OpenImage(\"docker-archive:FILE\"), Options.Cache the directory an earlier scan of the image filled"
	case cache == "":
		c.how = `containerization.ScanContainerSecurity(ctx, "docker-archive:FILE", "full", …): inventory (empty layer cache), ` +
			"match against the generated export's database, compliance checks, recommendations"
	default:
		c.how = "the same full scan, a re-scan of the unchanged archive: ScanOptions.Cache the cache the first full scan of it filled"
	}
	c.cmd = func(dir string) *exec.Cmd {
		dirCache := cache
		if dirCache == "" {
			dirCache = filepath.Join(dir, "cache")
		}
		return exec.Command(b.self, childArg, kind, b.archive, dirCache, b.dbDir, filepath.Join(dir, "out.json"))
	}
	c.check = func(dir string, stdout []byte) (*scanOutput, error) {
		var st childStats
		if err := json.Unmarshal(stdout, &st); err != nil {
			return nil, fmt.Errorf("the child's stdout %q: %w", stdout, err)
		}
		if kind == kindFull {
			out, err := readFullScan(filepath.Join(dir, "out.json"))
			if err != nil {
				return nil, err
			}
			out.scanSeconds = st.ScanSeconds
			if ref := b.ref[refFull]; ref != nil && (out.scanned != ref.scanned || !slices.Equal(out.findings, ref.findings)) {
				return nil, fmt.Errorf("%d packages scanned and %d findings, where the first full scan had %d and %d (other findings)",
					out.scanned, len(out.findings), ref.scanned, len(ref.findings))
			}
			if ref := b.ref[refMyrmex]; ref != nil && out.scanned != len(ref.packages) {
				return nil, fmt.Errorf("%d packages scanned, where the inventory found %d", out.scanned, len(ref.packages))
			}
			if extra != nil {
				return out, extra(out)
			}
			return out, nil
		}
		out, err := readInventory(filepath.Join(dir, "out.json"))
		if err != nil {
			return nil, err
		}
		out.scanSeconds = st.ScanSeconds
		if ref := b.ref[refMyrmex]; ref != nil {
			if d := samePackages(ref.packages, out.packages); d != "" {
				return nil, fmt.Errorf("not the first inventory's packages: %s", d)
			}
		}
		if extra != nil {
			return out, extra(out)
		}
		return out, nil
	}
	return c
}

// syftScan is a contender that runs `syft scan docker-archive:FILE -o syft-json=OUT` with its default
// catalogers for an image. An empty cache is the round's own empty directory.
func (b *bench) syftScan(key, title, cache string) contender {
	c := contender{key: key, title: title, tool: "Syft",
		how: "syft scan docker-archive:FILE -o syft-json=OUT -q, default catalogers for an image, SYFT_CACHE_DIR an empty directory"}
	if cache != "" {
		c.how = "the same, SYFT_CACHE_DIR the directory earlier Syft runs used"
	}
	c.cmd = func(dir string) *exec.Cmd {
		dirCache := cache
		if dirCache == "" {
			dirCache = filepath.Join(dir, "syft-cache")
		}
		cmd := exec.Command(b.syft, "scan", "docker-archive:"+b.archive, "-o", "syft-json="+filepath.Join(dir, "out.json"), "-q")
		// No update check (a network call), no configuration file from the working directory or the home's
		// .syft.yaml beyond what the environment names.
		cmd.Env = append(cmd.Env, "SYFT_CHECK_FOR_APP_UPDATE=false", "SYFT_CACHE_DIR="+dirCache)
		return cmd
	}
	c.check = func(dir string, _ []byte) (*scanOutput, error) {
		out, err := readSyft(filepath.Join(dir, "out.json"))
		if err != nil {
			return nil, err
		}
		if ref := b.ref[refSyft]; ref != nil {
			if d := samePackages(ref.packages, out.packages); d != "" {
				return nil, fmt.Errorf("not Syft's first run's packages: %s", d)
			}
		}
		return out, nil
	}
	return c
}

// runOnce runs a contender in a fresh directory of its own, its TMPDIR too, checks what it found and removes the
// directory.
func (b *bench) runOnce(c contender) (*scanOutput, sample, error) {
	var s sample
	dir, err := os.MkdirTemp(b.tmp, "round-"+c.key+"-")
	if err != nil {
		return nil, s, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return nil, s, err
	}
	cmd := c.cmd(dir)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), cmd.Env...)
	p, err := runChild(b.launcher, cmd)
	s = sample{seconds: p.seconds, user: p.user, system: p.system, maxRSS: p.maxRSS}
	if err != nil {
		return nil, s, err
	}
	out, err := c.check(dir, p.stdout)
	if err != nil {
		return nil, s, fmt.Errorf("verifying: %w", err)
	}
	s.scanSeconds = out.scanSeconds
	s.packages = out.count()
	return out, s, nil
}

// rounds runs every contender once per round, in a random order of the round's own (b.order), so that no
// contender is bound to run first or right after another's burst of writes.
func (b *bench) rounds(ctx context.Context, cs []contender) ([]measurement, error) {
	return b.roundsOf(ctx, "scan", b.cfg.rounds, cs)
}

// roundsOf runs the rounds of a part of the benchmark (its name in the order's record).
func (b *bench) roundsOf(ctx context.Context, part string, rounds int, cs []contender) ([]measurement, error) {
	ms := make([]measurement, len(cs))
	for i, c := range cs {
		ms[i] = measurement{Key: c.key, Title: c.title, How: c.how, Tool: c.tool, Caveat: c.caveat}
	}
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = c.key
	}
	for r, order := range b.order.Rounds(part, keys, rounds) {
		for _, i := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			_, s, err := b.runOnce(cs[i])
			if err != nil {
				return nil, fmt.Errorf("round %d of %s: %w", r+1, cs[i].title, err)
			}
			if len(ms[i].Packages) > 0 && s.packages != ms[i].Packages[0] {
				return nil, fmt.Errorf("round %d of %s: %d packages, the first round %d", r+1, cs[i].title, s.packages, ms[i].Packages[0])
			}
			ms[i].add(s)
			benchkit.Logf("round %d  %-26s %6.2fs  cpu %5.2fs  peak RSS %4.0f MB  %d packages", r+1, cs[i].title, s.seconds,
				s.user+s.system, float64(s.maxRSS)/1e6, s.packages)
		}
	}
	for i := range ms {
		ms[i].summarize()
	}
	return ms, nil
}

// countFiles counts the regular files under dir.
func countFiles(dir string) int {
	n, _ := dirSize(dir)
	return n
}

// dirSize counts the regular files under dir and their bytes.
func dirSize(dir string) (n int, size int64) {
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n, size = n+1, size+fi.Size()
		}
		return nil
	})
	return n, size
}

// databases makes the advisory export (generateExport) and, from its records, the databases of both tools:
// Myrmex's, imported with vulndb.Import from the export's zips, and Grype's, built by Grype's own builder from the
// same records converted to its providers' formats (writeGrypeWorkspace) and imported with `grype db import`.
// All of it is untimed.
func (b *bench) databases(ctx context.Context, rep *report) error {
	t := time.Now()
	src := filepath.Join(b.tmp, "osv-export")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	ex, err := generateExport(b.root, src)
	if err != nil {
		return fmt.Errorf("generating the advisory export: %w", err)
	}
	var zipBytes int64
	for _, z := range ex.zips {
		if fi, err := os.Stat(z); err == nil {
			zipBytes += fi.Size()
		}
	}
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "generate the advisory export", Seconds: time.Since(t).Seconds()})

	t = time.Now()
	b.dbDir = filepath.Join(b.tmp, "osv")
	var st vulndb.Status
	for _, z := range ex.zips {
		if st, err = vulndb.Import(ctx, z, vulndb.Options{Dir: b.dbDir}); err != nil {
			return fmt.Errorf("importing %s: %w", filepath.Base(z), err)
		}
	}
	if st.Total != len(ex.records) || st.Invalid != 0 {
		return fmt.Errorf("Myrmex's database holds %d records (%d invalid), the export %d", st.Total, st.Invalid, len(ex.records))
	}
	_, myBytes := dirSize(b.dbDir)
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "import the export into Myrmex's database (vulndb.Import, one zip at a time)", Seconds: time.Since(t).Seconds()})

	t = time.Now()
	ws := filepath.Join(b.tmp, "grype-workspace")
	conv, err := writeGrypeWorkspace(ex, ws)
	if err != nil {
		return fmt.Errorf("converting the export for Grype: %w", err)
	}
	built := filepath.Join(b.tmp, "grype-build")
	if _, _, err := benchkit.RunTool(ctx, nil, b.grype.dbBuild, ws, built); err != nil {
		return fmt.Errorf("building Grype's database: %w", err)
	}
	b.grypeDB = filepath.Join(b.tmp, "grype-db")
	if _, _, err := benchkit.RunTool(ctx, b.grypeEnv(), b.grype.grype, "db", "import", filepath.Join(built, "vulnerability.db")); err != nil {
		return fmt.Errorf("importing Grype's database: %w", err)
	}
	os.RemoveAll(ws)
	os.RemoveAll(built)
	_, grypeBytes := dirSize(b.grypeDB)
	rep.Setup = append(rep.Setup, benchkit.SetupStep{Step: "convert the export for Grype, build its database (grype/db.Build) and import it (grype db import)",
		Seconds: time.Since(t).Seconds()})

	b.fixtureIDs = ex.fixtureIDs
	rep.Database = database{Generator: genVersion, Seed: genSeed, Records: len(ex.records), ByFamily: ex.counts, Fixtures: ex.fixtures,
		JSONBytes: ex.bytes, ZipBytes: zipBytes, MyrmexBytes: myBytes, GrypeItems: conv.Items, GrypeSkipped: conv.Skipped, GrypeBytes: grypeBytes}
	benchkit.Logf("advisories: %d records (%v), %.0f MB of JSON; Myrmex's database %.0f MB, Grype's %.0f MB (%v, skipped %v)", len(ex.records),
		ex.counts, float64(ex.bytes)/1e6, float64(myBytes)/1e6, float64(grypeBytes)/1e6, conv.Items, conv.Skipped)
	return nil
}

// grypeEnv points Grype at the run's database, offline: no update, no age check, no check for a newer Grype.
func (b *bench) grypeEnv() []string {
	return []string{"GRYPE_DB_CACHE_DIR=" + b.grypeDB, "GRYPE_DB_AUTO_UPDATE=false", "GRYPE_DB_VALIDATE_AGE=false",
		"GRYPE_DB_REQUIRE_UPDATE_CHECK=false", "GRYPE_CHECK_FOR_APP_UPDATE=false", "SYFT_CHECK_FOR_APP_UPDATE=false"}
}

// grypeScan is a contender that runs `grype docker-archive:FILE -o json --file OUT` against the run's database.
// Grype catalogs the image with the Syft it is built with, then matches; it keeps no cache of either.
func (b *bench) grypeScan(key, title string) contender {
	c := contender{key: key, title: title, tool: "Grype",
		how: "grype docker-archive:FILE -o json --file OUT -q: Syft's catalogers for an image, then the match against Grype's database " +
			"built from the same advisories, offline"}
	c.cmd = func(dir string) *exec.Cmd {
		cmd := exec.Command(b.grype.grype, "docker-archive:"+b.archive, "-o", "json", "--file", filepath.Join(dir, "out.json"), "-q")
		cmd.Env = append(b.grypeEnv(), "GRYPE_CACHE_DIR="+filepath.Join(dir, "grype-cache"), "SYFT_CACHE_DIR="+filepath.Join(dir, "syft-cache"))
		return cmd
	}
	c.check = func(dir string, _ []byte) (*scanOutput, error) {
		out, err := readGrype(filepath.Join(dir, "out.json"))
		if err != nil {
			return nil, err
		}
		if ref := b.ref[refGrype]; ref != nil && !slices.Equal(out.findings, ref.findings) {
			return nil, fmt.Errorf("%d findings, where Grype's first run had %d", len(out.findings), len(ref.findings))
		}
		return out, nil
	}
	return c
}
