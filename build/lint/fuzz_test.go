package lint

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
)

// fuzzLintSeeds are Dockerfiles for FuzzLint: realistic ones that break most rules, and the parser's edge cases
// (directives, heredocs, continuations, CRLF, a BOM, JSON forms, ONBUILD, pragmas).
var fuzzLintSeeds = []string{
	"",
	"\n",
	"# only a comment\n",
	"FROM debian:12\n",
	"FROM debian\nUSER root\n",
	"FROM golang:1.26 AS build\nWORKDIR src\nRUN cd /src && go build ./...\nFROM scratch\nCOPY --from=build /out /out\nCMD /out\n",
	"FROM a:1\nRUN apt-get update && apt-get install -y curl wget | tee log\nRUN pip install flask\nRUN npm install -g express\nRUN apk add --update git\n",
	"FROM a:1\nRUN apt-get update && apt-get install -y --no-install-recommends curl=7.88 \\\n && rm -rf /var/lib/apt/lists/*\n",
	"FROM a:1\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN wget -O - https://x | sh\n",
	"FROM a:1\nCMD [\"a\"]\nCMD b\nENTRYPOINT x\nENTRYPOINT [\"y\"]\n",
	"FROM a:1\nMAINTAINER someone\nADD src /src\nADD https://example.com/x.tar.gz /x\n",
	"ARG BASE=debian:12\nFROM ${BASE}\nARG X\nENV PIP_NO_CACHE_DIR=1\nRUN pip install x==1\n",
	"# syntax=docker/dockerfile:1\nFROM a:1\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\n",
	"# escape=`\nFROM mcr.microsoft.com/windows:ltsc2022\nRUN echo a `\n  b\nWORKDIR C:\\\\app\n",
	"FROM a:1\r\nRUN sudo make install\r\nUSER 0:0\r\n",
	"\ufeffFROM a:1\nRUN true\nRUN true\nRUN true\n",
	"FROM a:1\n# hadolint ignore=DL3008,DL3015\nRUN apt-get install -y curl\n",
	"# hadolint global ignore=DL3006\nFROM debian\n",
	"FROM a:1\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update\nRUN --network=none true\n",
	"FROM a:1\nONBUILD RUN apt-get install x\nHEALTHCHECK CMD curl -f http://localhost/\nSTOPSIGNAL SIGTERM\nEXPOSE 80/tcp\nVOLUME [\"/data\"]\nLABEL a=b\n",
	"FROM a:1 AS b\nRUN apt-get update\nFROM b\nUSER root\nFROM c:latest\n",
	"FROM a:1\nRUN \\\n\n# comment inside\n  echo hi\n",
	"FROM\n",
	"RUN true\n",
	"FROM a:1\nRUN --mount=type=bogus x\n",
	"FROM a:1\nCOPY <<EOF /x\nhello\nEOF\n",
	"FROM a:1\nENV A=\"unterminated\n",
	"FROM a:1\nUNKNOWN instruction\n",
	"FROM a:1\nRUN echo $(cd /tmp; ls) `cd x` && (cd y)\n",
}

// FuzzLint checks lint.Lint on arbitrary Dockerfiles: it returns a report or an error wrapping
// errdefs.ErrInvalidArgument, never both and never a panic; every finding names a known rule and a line within
// the file, findings come in line order, a finding fails the report exactly when it reaches the threshold,
// ignoring every reported rule leaves none, and linting the same input twice gives the same report.
func FuzzLint(f *testing.F) {
	for _, s := range fuzzLintSeeds {
		f.Add([]byte(s))
	}
	known := map[string]Severity{}
	for _, r := range []rule{dl3000, dl3002, dl3003, dl3004, dl3006, dl3007, dl3008, dl3009, dl3013, dl3015,
		dl3016, dl3018, dl3019, dl3020, dl3025, dl3042, dl3059, dl4000, dl4003, dl4004, dl4006} {
		known[r.id] = r.severity
	}
	f.Fuzz(func(t *testing.T, dockerfile []byte) {
		rep, err := Lint(dockerfile, Options{FailureThreshold: SeverityWarning})
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Lint error %v does not wrap ErrInvalidArgument", err)
			}
			if rep != nil {
				t.Fatalf("Lint returned a report with the error %v", err)
			}
			return
		}
		if rep == nil {
			t.Fatal("Lint returned neither a report nor an error")
		}
		lines := len(strings.Split(string(dockerfile), "\n"))
		failed := false
		var rules []string
		for i, fd := range rep.Findings {
			sev, ok := known[fd.Rule]
			if !ok {
				t.Errorf("finding %d: unknown rule %q", i, fd.Rule)
			} else if fd.Severity != sev {
				t.Errorf("finding %d: %s has severity %v, want %v", i, fd.Rule, fd.Severity, sev)
			}
			if fd.Line < 1 || fd.Line > lines {
				t.Errorf("finding %d: %s on line %d of a %d-line file", i, fd.Rule, fd.Line, lines)
			}
			if i > 0 && rep.Findings[i-1].Line > fd.Line {
				t.Errorf("finding %d: line %d after line %d", i, fd.Line, rep.Findings[i-1].Line)
			}
			if fd.Message == "" {
				t.Errorf("finding %d: %s has no message", i, fd.Rule)
			}
			failed = failed || fd.Severity >= SeverityWarning
			rules = append(rules, strings.ToLower(fd.Rule)) // Ignore is case-insensitive
		}
		if rep.Failed != failed {
			t.Errorf("Failed = %v, want %v for findings %+v", rep.Failed, failed, rep.Findings)
		}

		again, err := Lint(dockerfile, Options{FailureThreshold: SeverityWarning})
		if err != nil {
			t.Fatalf("second Lint failed: %v", err)
		}
		if !reflect.DeepEqual(rep, again) {
			t.Fatalf("Lint is not deterministic:\nfirst  %+v\nsecond %+v", rep, again)
		}

		if len(rules) > 0 {
			quiet, err := Lint(dockerfile, Options{Ignore: slices.Compact(slices.Sorted(slices.Values(rules))),
				FailureThreshold: SeverityStyle})
			if err != nil {
				t.Fatalf("Lint with Ignore failed: %v", err)
			}
			if len(quiet.Findings) != 0 || quiet.Failed {
				t.Errorf("ignoring %v still reports %+v (failed %v)", rules, quiet.Findings, quiet.Failed)
			}
		}
	})
}
