package build

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	apibuild "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/errdefs"
)

// classicBuild builds on the engine's classic builder: the fallback for an engine that answers the Engine API
// but offers no BuildKit. The context goes as a tarball that honours .dockerignore, as the docker CLI sends it.
// What only BuildKit does (secrets, cache import and export, RUN --mount) is refused by the engine as it reads
// the Dockerfile; its answer comes back as the error.
func (r *request) classicBuild(ctx context.Context, eng *engine.Client, start time.Time) (*Result, error) {
	if len(r.opts.Secrets) > 0 || len(r.cacheFrom) > 0 || len(r.cacheTo) > 0 || r.opts.Platform != "" {
		return nil, fmt.Errorf("%w: the engine offers no BuildKit, and its classic builder takes no secrets, cache import or export, or platform",
			errdefs.ErrUnavailable)
	}
	dockerfileName, err := r.classicDockerfileName()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(r.writeContext(pw, dockerfileName)) }()
	defer pr.Close()

	args := map[string]*string{}
	for k, v := range r.opts.BuildArgs {
		args[k] = &v
	}
	resp, err := eng.API().ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags: r.opts.Tags, Dockerfile: dockerfileName, BuildArgs: args, Target: r.opts.Target, Labels: r.opts.Labels,
		NoCache: r.opts.NoCache, PullParent: r.opts.Pull, Remove: true, ForceRemove: true, Version: apibuild.BuilderV1,
	})
	if err != nil {
		return nil, fmt.Errorf("classic build: %w", err)
	}
	defer resp.Body.Close()
	return r.readClassic(ctx, resp.Body, start)
}

// classicDockerfileName is the Dockerfile's path in the context tarball; one outside the context is added to it.
func (r *request) classicDockerfileName() (string, error) {
	rel, err := filepath.Rel(r.contextDir, filepath.Join(r.dockerfileDir, r.dockerfile))
	if err != nil || strings.HasPrefix(rel, "..") {
		return ".myrmex-Dockerfile", nil
	}
	return filepath.ToSlash(rel), nil
}

// writeContext writes the build context as a tarball, leaving out what .dockerignore excludes (but never the
// Dockerfile or .dockerignore, as docker does).
func (r *request) writeContext(w io.Writer, dockerfileName string) error {
	var patterns []string
	if f, err := os.Open(filepath.Join(r.contextDir, ".dockerignore")); err == nil {
		patterns, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading .dockerignore: %w", err)
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("%w: .dockerignore: %v", errdefs.ErrInvalidArgument, err)
	}
	tw := tar.NewWriter(w)
	keep := map[string]bool{dockerfileName: true, ".dockerignore": true}
	err = filepath.WalkDir(r.contextDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(r.contextDir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !keep[rel] {
			excluded, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if excluded {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if dockerfileName == ".myrmex-Dockerfile" {
		b, err := os.ReadFile(filepath.Join(r.dockerfileDir, r.dockerfile))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: dockerfileName, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

var (
	classicStep     = regexp.MustCompile(`^Step (\d+)/(\d+) : (.*)$`)
	classicExitCode = regexp.MustCompile(`returned a non-zero code: (\d+)`)
)

// readClassic follows the classic builder's JSON stream (engine.ReadMessages: a bounded message a line): "Step N/M
// : INSTRUCTION" lines start steps, " ---> Using cache" marks a cached one, the rest is output; an error ends the
// build at the current step.
func (r *request) readClassic(ctx context.Context, body io.Reader, start time.Time) (*Result, error) {
	res := &Result{Tags: r.opts.Tags}
	var step, instruction string
	var output []string
	emit := func(e Event) {
		if r.opts.Progress != nil {
			e.Time = time.Now()
			r.opts.Progress(e)
		}
	}
	err := engine.ReadMessages(ctx, body, "reading the classic builder's answer", func(msg jsonstream.Message) error {
		if msg.Error != nil {
			text := msg.Error.Message
			if step != "" {
				emit(Event{Kind: StepCompleted, Step: step, Name: instruction, Error: text})
			}
			se := &StepError{Instruction: instruction, Line: r.lineOf(instruction), Output: output, Err: errors.New(text)}
			if m := classicExitCode.FindStringSubmatch(text); m != nil {
				se.ExitCode, _ = strconv.Atoi(m[1])
			}
			if step == "" {
				return fmt.Errorf("classic build: %s", text)
			}
			return fmt.Errorf("building %s: %w", instruction, se)
		}
		if msg.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*msg.Aux, &aux) == nil && aux.ID != "" {
				res.ImageID = aux.ID
			}
		}
		for _, line := range strings.Split(strings.TrimRight(msg.Stream, "\n"), "\n") {
			switch m := classicStep.FindStringSubmatch(line); {
			case line == "":
			case m != nil:
				if step != "" {
					emit(Event{Kind: StepCompleted, Step: step, Name: instruction})
				}
				step, instruction, output = m[1], m[3], nil
				res.Steps++
				emit(Event{Kind: StepStarted, Step: step, Name: instruction})
			case strings.TrimSpace(line) == "---> Using cache":
				res.CacheHits++
			default:
				output = append(output, line)
				if len(output) > outputTail {
					output = output[len(output)-outputTail:]
				}
				emit(Event{Kind: StepLog, Step: step, Name: instruction, Line: line, Stream: 1})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if step != "" {
		emit(Event{Kind: StepCompleted, Step: step, Name: instruction})
	}
	if res.ImageID == "" {
		return nil, fmt.Errorf("classic build: the engine named no image")
	}
	res.Duration = time.Since(start)
	res.Source = source(r.opts, res.ImageID)
	return res, nil
}
