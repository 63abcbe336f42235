package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/registry"
)

// childArg, first on the command line, makes the benchmark run one of Myrmex's operations and exit, so that its
// peak memory is a process's own, read as crane's and the docker CLI's are (rusage's maxrss):
//
//	registry child push SRC DSTHOST/REPO:TAG GZIPLEVEL    registry.Push of SRC (the engine's image, or docker-archive:FILE)
//	registry child copy SRCHOST/REPO:TAG DSTHOST/REPO:TAG  registry.Copy
//	registry child pull SRCHOST/REPO:TAG VIA               registry.Pull into the engine at DOCKER_HOST (VIA: engine, load)
//
// Registries are plain HTTP on 127.0.0.1, as the benchmark runs them.
const childArg = "child"

// childStats is the line of JSON a child prints on stdout.
type childStats struct {
	Digest string `json:"digest"`
	// Via is how a pull reached the engine (registry.Result.Via).
	Via string `json:"via,omitempty"`
	// AllocBytes is what the Go heap allocated over the operation; ReadBytes what the process read through
	// read(2) and its kin, files and sockets (rchar).
	AllocBytes uint64 `json:"alloc_bytes"`
	ReadBytes  int64  `json:"read_bytes"`
}

func child(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("want: %s push|copy|pull ARGS…, got %q", childArg, args)
	}
	ctx := context.Background()
	parse := func(s string) (registry.Endpoint, name.Reference, error) {
		host, _, _ := strings.Cut(s, "/")
		ep, err := registry.ParseEndpoint("http://"+host, "")
		if err != nil {
			return ep, nil, err
		}
		ref, err := registry.Normalize(s, ep)
		return ep, ref, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	read0 := readChars()
	var (
		res registry.Result
		err error
	)
	switch op := args[0]; {
	case op == "push" && len(args) == 4:
		level, lerr := strconv.Atoi(args[3])
		if lerr != nil {
			return lerr
		}
		ep, dst, perr := parse(args[2])
		if perr != nil {
			return perr
		}
		var eng registry.Engine
		if !registry.IsLocalSource(args[1]) {
			e, eerr := engine.New(ctx, engine.Options{})
			if eerr != nil {
				return eerr
			}
			defer e.Close()
			eng = e
		}
		res, err = registry.Push(ctx, eng, args[1], dst, ep, registry.PushOptions{GzipLevel: level}, registry.Options{})
	case op == "copy" && len(args) == 3:
		sep, src, perr := parse(args[1])
		if perr != nil {
			return perr
		}
		dep, dst, perr := parse(args[2])
		if perr != nil {
			return perr
		}
		res, err = registry.Copy(ctx, src, sep, registry.Options{}, dst, dep, registry.Options{})
	case op == "pull" && len(args) == 3:
		ep, src, perr := parse(args[1])
		if perr != nil {
			return perr
		}
		e, eerr := engine.New(ctx, engine.Options{})
		if eerr != nil {
			return eerr
		}
		defer e.Close()
		res, err = registry.Pull(ctx, e, src, ep, registry.Options{PullVia: registry.PullVia(args[2])})
	default:
		return fmt.Errorf("want: %s push SRC DST LEVEL | copy SRC DST | pull SRC VIA, got %q", childArg, args)
	}
	if err != nil {
		return err
	}
	runtime.ReadMemStats(&after)
	return json.NewEncoder(os.Stdout).Encode(childStats{Digest: res.Digest, Via: res.Via, AllocBytes: after.TotalAlloc - before.TotalAlloc, ReadBytes: readChars() - read0})
}
