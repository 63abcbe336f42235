package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	gwpb "github.com/moby/buildkit/frontend/gateway/pb"
	bkerrdefs "github.com/moby/buildkit/solver/errdefs"
)

// StepError is a Dockerfile step that failed while building. Build returns it wrapped; get it with errors.As.
type StepError struct {
	// Instruction is the failing instruction as the builder names it, without its stage prefix ("RUN make").
	Instruction string
	// Line is the instruction's first line in the Dockerfile, or 0 when unknown.
	Line int
	// ExitCode is the exit status of a failing RUN, or 0 when the step failed otherwise.
	ExitCode int
	// Output holds the last lines (up to 20) that the step wrote.
	Output []string
	// Err is the builder's error.
	Err error
}

func (e *StepError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %q", e.Instruction)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.ExitCode != 0 {
		fmt.Fprintf(&b, " exited with code %d", e.ExitCode)
	} else {
		b.WriteString(" failed")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// stagePrefix matches the "[stage 2/4] " that BuildKit puts before an instruction's vertex name.
var stagePrefix = regexp.MustCompile(`^\[[^\]]*\]\s+`)

// exitCodeRE finds the exit status in the message of engines (Docker 20.10) whose errors carry no ExitError.
var exitCodeRE = regexp.MustCompile(`exit code: (\d+)`)

// stepError describes a failed Solve as a StepError, or returns nil when no step failed (a Dockerfile the
// frontend rejects, say).
func (r *request) stepError(tr *tracker, err error) *StepError {
	id := ""
	var ve *bkerrdefs.VertexError
	if errors.As(err, &ve) && ve.Vertex != nil {
		id = ve.Digest
	}
	v := tr.vertices[id]
	if v == nil {
		if id = tr.failed(); id == "" {
			return nil
		}
		v = tr.vertices[id]
	}
	se := &StepError{Instruction: stagePrefix.ReplaceAllString(v.name, ""), Output: v.lines, Err: err}
	var ee *gwpb.ExitError
	if errors.As(err, &ee) {
		se.ExitCode = int(ee.ExitCode)
	} else if m := exitCodeRE.FindStringSubmatch(err.Error()); m != nil {
		se.ExitCode, _ = strconv.Atoi(m[1])
	}
	for _, src := range bkerrdefs.Sources(err) {
		if src.Info != nil && filepath.Base(src.Info.Filename) == r.dockerfile && len(src.Ranges) > 0 {
			se.Line = int(src.Ranges[0].Start.Line)
			break
		}
	}
	if se.Line == 0 {
		se.Line = r.lineOf(se.Instruction)
	}
	return se
}

// lineOf finds an instruction in the Dockerfile, for engines whose errors carry no source location. It returns
// 0 when the instruction is not found or appears more than once (the line would be a guess).
func (r *request) lineOf(instruction string) int {
	f, err := os.Open(filepath.Join(r.dockerfileDir, r.dockerfile))
	if err != nil {
		return 0
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		return 0
	}
	want := strings.Join(strings.Fields(instruction), " ")
	line := 0
	for _, n := range res.AST.Children {
		if strings.Join(strings.Fields(n.Original), " ") != want {
			continue
		}
		if line != 0 {
			return 0
		}
		line = n.StartLine
	}
	return line
}
