// Command dbbuild builds a Grype v6 vulnerability database with Grype's own builder (grype/db.Build, the code
// grype-db runs) from vunnel provider workspaces whose result files another program wrote.
//
//	dbbuild WORKSPACE OUTDIR
//
// WORKSPACE holds one directory per provider (debian, github, govulndb), each with results/*.json, vunnel
// envelopes ({"schema", "identifier", "item"}). dbbuild writes each provider's listing and metadata.json as vunnel
// does, then builds OUTDIR/vulnerability.db.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	grypedb "github.com/anchore/grype/grype/db"
	"github.com/anchore/grype/grype/db/provider"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dbbuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want: dbbuild WORKSPACE OUTDIR")
	}
	ws, out := args[0], args[1]
	ents, err := os.ReadDir(ws)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	var states provider.States
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		w := provider.NewWorkspaceWriter(ws, name)
		files, err := filepath.Glob(filepath.Join(w.ResultsPath(), "*.json"))
		if err != nil {
			return err
		}
		sort.Strings(files)
		var listed []provider.File
		for _, f := range files {
			pf, err := provider.NewFile(f)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(w.Path(), f)
			if err != nil {
				return err
			}
			pf.Path = filepath.ToSlash(rel)
			listed = append(listed, *pf)
		}
		if err := w.WriteListing(listed); err != nil {
			return err
		}
		listing, err := provider.NewFile(w.ListingPath())
		if err != nil {
			return err
		}
		listing.Path = "results/listing.xxh64"
		if err := w.WriteState(provider.State{Provider: name, Version: 1, Processor: "vunnel@myrmex-bench",
			Schema:    provider.Schema{Version: "1.0.3", URL: "https://raw.githubusercontent.com/anchore/vunnel/main/schema/provider-workspace-state/schema-1.0.3.json"},
			Timestamp: now, Listing: listing, Store: "flat-file"}); err != nil {
			return err
		}
		st, err := provider.ReadState(filepath.Join(w.Path(), "metadata.json"))
		if err != nil {
			return err
		}
		states = append(states, *st)
		fmt.Fprintf(os.Stderr, "provider %s: %d result files\n", name, len(listed))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return grypedb.Build(grypedb.BuildConfig{SchemaVersion: 6, Directory: out, States: states, Timestamp: now})
}
