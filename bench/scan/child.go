package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	containerization "github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// childArg, first on the command line, makes the benchmark run one of Myrmex's scans and exit:
//
//	scan child inventory|full ARCHIVE CACHE DBDIR OUT
const childArg = "child"

// The kinds of scan a child runs.
const (
	kindInventory = "inventory" // inventory.Scan of registry.OpenImage(docker-archive:ARCHIVE), the layer cache in CACHE
	kindFull      = "full"      // ScanContainerSecurity("docker-archive:ARCHIVE", "full") against the database in DBDIR
)

// childStats is the line of JSON a child prints on stdout.
type childStats struct {
	// ScanSeconds is the scan alone, in the process: without the process's start, opening the archive's index or
	// writing the result.
	ScanSeconds float64 `json:"scan_seconds"`
}

// child runs one scan and writes its result as JSON to OUT, as `syft scan -o syft-json=FILE` writes its own: the
// inventory's Result, or the facade's SecurityScanResult.
func child(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("want: %s inventory|full ARCHIVE CACHE DBDIR OUT, got %q", childArg, args)
	}
	kind, archive, cache, dbDir, out := args[0], args[1], args[2], args[3], args[4]
	ctx := context.Background()
	var (
		result any
		took   time.Duration
	)
	switch kind {
	case kindInventory:
		// The archive opened as Myrmex's scans open one (its layers read directly, not through a manifest).
		start := time.Now()
		img, cleanup, err := registry.OpenImage(ctx, nil, registry.SourceArchive+archive, registry.Options{})
		if err != nil {
			return err
		}
		defer cleanup()
		res, err := inventory.Scan(ctx, img, inventory.Options{Cache: cache})
		if err != nil {
			return err
		}
		took, result = time.Since(start), res
	case kindFull:
		start := time.Now()
		res, err := containerization.ScanContainerSecurity(ctx, registry.SourceArchive+archive, "full",
			containerization.ScanOptions{DBDir: dbDir, Cache: cache})
		if err != nil {
			return err
		}
		took, result = time.Since(start), res
	default:
		return fmt.Errorf("unknown kind of scan %q", kind)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(result); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(childStats{ScanSeconds: took.Seconds()})
}
