package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/codomyrmex/containerization/scan/compliance"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// The facts cache keeps what a scan learned from an image's layers (the inventory and the compliance checks'
// report) under the identity the caller vouches for (Options.Identity), so that a re-scan of an unchanged image
// reads no layer: only the advisory match runs again, against the database as it is now. The layer cache
// (inventory.Options.Cache) cannot do this alone: an image may declare any diff ID for any content, so a layer
// found there is still read and hashed. An identity is what makes that check unnecessary: it names content that
// cannot have changed (an archive file whose stat, ctime included, is the same; see FileIdentity).
//
// An entry is one JSON file named by the SHA-256 of its key, written to a temporary name and renamed into place;
// its key is inside it and compared whole, so that a collision or a damaged entry is a miss.
const (
	factsFormat = "myrmex-scan-facts/1"
	factsSubdir = "scan-facts"
	// maxFactsEntry bounds what is read of an entry; the Debian test image's is about 60 kB.
	maxFactsEntry = 64 << 20
	// maxFactsEntries is the number of entries kept; past it, the entries used longest ago go first.
	maxFactsEntries = 256
)

type facts struct {
	Key        string              `json:"key"`
	OS         inventory.OS        `json:"os"`
	Packages   []inventory.Package `json:"packages"`
	Warnings   []string            `json:"warnings"`
	Compliance *compliance.Report  `json:"compliance,omitempty"`
}

// factsKey is everything besides the identity that what a scan learns from the layers depends on.
func factsKey(identity, configDigest string, typ Type, ref string, opts Options) string {
	ignore := slices.Sorted(slices.Values(opts.IgnoreChecks))
	return fmt.Sprintf("%s\x00%s\x00config %s\x00type %s\x00ref %q\x00ignore %q\x00content trust %t\x00osv-scalibr %s\x00limits %+v",
		factsFormat, identity, configDigest, typ, ref, ignore, os.Getenv("DOCKER_CONTENT_TRUST") == "1", inventory.ScalibrVersion, opts.Limits)
}

func factsPath(cache, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(cache, factsSubdir, hex.EncodeToString(sum[:])+".json")
}

// loadFacts returns the entry for key, or nil on a miss, a damaged entry included.
func loadFacts(cache, key string) *facts {
	f, err := os.Open(factsPath(cache, key))
	if err != nil {
		return nil
	}
	defer f.Close()
	var fs facts
	if err := json.NewDecoder(io.LimitReader(f, maxFactsEntry)).Decode(&fs); err != nil || fs.Key != key {
		return nil
	}
	now := time.Now()
	os.Chtimes(f.Name(), now, now) // used: last to be removed
	return &fs
}

// storeFacts writes an entry. A cache that cannot be written costs the next scan its speed, not its result, so
// errors are dropped.
func storeFacts(cache string, fs *facts) {
	dir := filepath.Join(cache, factsSubdir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	err = json.NewEncoder(tmp).Encode(fs)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), factsPath(cache, fs.Key))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	trimFacts(dir)
}

// trimFacts keeps the maxFactsEntries entries used last, and removes temporary files a crashed scan left.
func trimFacts(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil || len(des) <= maxFactsEntries {
		return
	}
	type entry struct {
		path string
		used time.Time
	}
	var es []entry
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(dir, de.Name())
		if strings.HasPrefix(de.Name(), ".tmp-") {
			if time.Since(info.ModTime()) > 24*time.Hour {
				os.Remove(p)
			}
			continue
		}
		es = append(es, entry{p, info.ModTime()})
	}
	slices.SortFunc(es, func(a, b entry) int { return b.used.Compare(a.used) })
	for _, e := range es[min(len(es), maxFactsEntries):] {
		os.Remove(e.path)
	}
}
