package lint

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/codomyrmex/containerization/errdefs"
)

// hit is a rule and the line it must be reported on.
type hit struct {
	rule string
	line int
}

func hits(t *testing.T, src string, opts Options) []hit {
	t.Helper()
	rep, err := Lint([]byte(src), opts)
	if err != nil {
		t.Fatalf("Lint(%q) error = %v", src, err)
	}
	var out []hit
	for _, f := range rep.Findings {
		out = append(out, hit{f.Rule, f.Line})
	}
	return out
}

func TestRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []hit // findings of rule (the others are ignored)
		rule string
	}{
		{"DL3000 relative", "FROM a:1\nWORKDIR app\n", []hit{{"DL3000", 2}}, "DL3000"},
		{"DL3000 absolute", "FROM a:1\nWORKDIR /app\nWORKDIR $HOME\nWORKDIR C:\\\\app\n", nil, "DL3000"},

		{"DL3002 root last", "FROM a:1\nUSER app\nUSER root\n", []hit{{"DL3002", 3}}, "DL3002"},
		{"DL3002 uid 0 group", "FROM a:1\nUSER 0:0\n", []hit{{"DL3002", 2}}, "DL3002"},
		{"DL3002 root then user", "FROM a:1\nUSER root\nRUN id\nUSER app\n", nil, "DL3002"},

		{"DL3003 cd", "FROM a:1\nRUN cd /tmp && make\n", []hit{{"DL3003", 2}}, "DL3003"},
		{"DL3003 cd in subshell", "FROM a:1\nRUN true; (cd /tmp || exit 1)\n", []hit{{"DL3003", 2}}, "DL3003"},
		{"DL3003 cd quoted", "FROM a:1\nRUN echo 'cd /tmp' && echo \"x && cd y\"\n", nil, "DL3003"},

		{"DL3004 sudo", "FROM a:1\nRUN sudo make install\n", []hit{{"DL3004", 2}}, "DL3004"},
		{"DL3004 not sudo", "FROM a:1\nRUN echo sudo\n", nil, "DL3004"},

		{"DL3006 untagged", "FROM debian\n", []hit{{"DL3006", 1}}, "DL3006"},
		{"DL3006 registry port", "FROM localhost:5000/app\n", []hit{{"DL3006", 1}}, "DL3006"},
		{"DL3006 exempt", "FROM scratch\nFROM golang:1.26 AS build\nFROM build\nFROM a@sha256:" + strings.Repeat("0", 64) + "\nARG B=x:1\nFROM ${B}\n", nil, "DL3006"},

		{"DL3007 latest", "FROM a:1\nFROM debian:latest\n", []hit{{"DL3007", 2}}, "DL3007"},
		{"DL3007 tag", "FROM debian:bookworm\n", nil, "DL3007"},

		{"DL3008 unpinned", "FROM a:1\nRUN apt-get install -y --no-install-recommends curl=1 wget\n", []hit{{"DL3008", 2}}, "DL3008"},
		{"DL3008 apt", "FROM a:1\nRUN apt install -y git\n", []hit{{"DL3008", 2}}, "DL3008"},
		{"DL3008 pinned", "FROM a:1\nRUN apt-get -o Dpkg::Options::=--force-confnew install -y curl=7.88 ./x.deb git/bookworm\n", nil, "DL3008"},

		{"DL3009 no cleanup", "FROM a:1\nRUN apt-get update && apt-get install -y x=1\n", []hit{{"DL3009", 2}}, "DL3009"},
		{"DL3009 cleanup", "FROM a:1\nRUN apt-get update && apt-get install -y x=1 \\\n && rm -rf /var/lib/apt/lists/*\n", nil, "DL3009"},
		{"DL3009 cache mount", "FROM a:1\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update\n", nil, "DL3009"},
		{"DL3009 builder stage not used", "FROM a:1 AS b\nRUN apt-get update\nFROM c:1\nCOPY --from=b /x /x\n", nil, "DL3009"},
		{"DL3009 stage used as base", "FROM a:1 AS b\nRUN apt-get update\nFROM b\nRUN true\n", []hit{{"DL3009", 2}}, "DL3009"},

		{"DL3013 unpinned", "FROM a:1\nRUN pip install --no-cache-dir flask\n", []hit{{"DL3013", 2}}, "DL3013"},
		{"DL3013 python -m pip", "FROM a:1\nRUN python3 -m pip install --no-cache-dir -i https://x flask==3.0 requests\n", []hit{{"DL3013", 2}}, "DL3013"},
		{"DL3013 pinned", "FROM a:1\nRUN pip3 install --no-cache-dir 'flask==3.0' 'b>=1' ./pkg x.whl git+https://h/r@v1\nRUN pip install --no-cache-dir -r requirements.txt\nRUN pip install --no-cache-dir .\n", nil, "DL3013"},

		{"DL3015 recommends", "FROM a:1\nRUN apt-get install -y curl=1\n", []hit{{"DL3015", 2}}, "DL3015"},
		{"DL3015 off", "FROM a:1\nRUN apt-get install -y --no-install-recommends curl=1\nRUN apt-get -o APT::Install-Recommends=false install -y b=1\n", nil, "DL3015"},

		{"DL3016 unpinned", "FROM a:1\nRUN npm install -g express @scope/pkg\n", []hit{{"DL3016", 2}}, "DL3016"},
		{"DL3016 git without ref", "FROM a:1\nRUN npm install git+https://h/r\n", []hit{{"DL3016", 2}}, "DL3016"},
		{"DL3016 npm i", "FROM a:1\nRUN npm i left-pad\n", []hit{{"DL3016", 2}}, "DL3016"},
		{"DL3016 pinned", "FROM a:1\nRUN npm install -g express@4.18.2 @scope/pkg@1.0.0 ./local git+https://h/r#v1\nRUN npm install\nRUN npm ci\n", nil, "DL3016"},

		{"DL3018 unpinned", "FROM a:1\nRUN apk add --no-cache curl\n", []hit{{"DL3018", 2}}, "DL3018"},
		{"DL3018 pinned", "FROM a:1\nRUN apk add --no-cache --virtual .deps curl=8.5.0-r0 'b~1.2' ./x.apk\n", nil, "DL3018"},

		{"DL3019 cache", "FROM a:1\nRUN apk add curl=8\n", []hit{{"DL3019", 2}}, "DL3019"},
		{"DL3019 no-cache", "FROM a:1\nRUN apk add --no-cache curl=8\nRUN --mount=type=cache,target=/var/cache/apk apk add b=1\n", nil, "DL3019"},

		{"DL3020 local", "FROM a:1\nADD app.py /app/\n", []hit{{"DL3020", 2}}, "DL3020"},
		{"DL3020 mixed", "FROM a:1\nADD x.tar.gz conf /app/\n", []hit{{"DL3020", 2}}, "DL3020"},
		{"DL3020 url and archive", "FROM a:1\nADD https://example.com/x /x\nADD rootfs.tar.xz /\nCOPY app.py /app/\n", nil, "DL3020"},

		{"DL3025 shell form", "FROM a:1\nCMD python app.py\nENTRYPOINT /bin/app\n", []hit{{"DL3025", 2}, {"DL3025", 3}}, "DL3025"},
		{"DL3025 json", "FROM a:1\nENTRYPOINT [\"/bin/app\"]\nCMD [\"--help\"]\n", nil, "DL3025"},

		{"DL3042 cache", "FROM a:1\nRUN pip install flask==3\n", []hit{{"DL3042", 2}}, "DL3042"},
		{"DL3042 env", "FROM a:1\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask==3\nFROM a:1\nRUN PIP_NO_CACHE_DIR=true pip install b==1\nRUN pip install --no-cache-dir c==1\n", nil, "DL3042"},
		{"DL3042 env inherited", "FROM a:1 AS base\nENV PIP_NO_CACHE_DIR=yes\nFROM base\nRUN pip install flask==3\n", nil, "DL3042"},
		{"DL3042 parent without env", "FROM a:1 AS base\nFROM base\nRUN pip install flask==3\n", []hit{{"DL3042", 3}}, "DL3042"},
		{"DL3042 env per stage", "FROM a:1\nENV PIP_NO_CACHE_DIR=1\nFROM b:1\nRUN pip install flask==3\n", []hit{{"DL3042", 4}}, "DL3042"},

		{"DL3059 consecutive", "FROM a:1\nRUN echo a\n# comment\nRUN echo b\n", []hit{{"DL3059", 4}}, "DL3059"},
		{"DL3059 separated", "FROM a:1\nRUN echo a\nWORKDIR /x\nRUN echo b\nRUN --mount=type=cache,target=/c echo c\nRUN a && b && c\nRUN d\nRUN e && f && g\n", nil, "DL3059"},

		{"DL4000 maintainer", "FROM a:1\nMAINTAINER me@example.com\n", []hit{{"DL4000", 2}}, "DL4000"},
		{"DL4000 label", "FROM a:1\nLABEL maintainer=me@example.com\n", nil, "DL4000"},

		{"DL4003 two CMD", "FROM a:1\nCMD [\"a\"]\nCMD [\"b\"]\n", []hit{{"DL4003", 3}}, "DL4003"},
		{"DL4003 one per stage", "FROM a:1\nCMD [\"a\"]\nFROM b:1\nCMD [\"b\"]\n", nil, "DL4003"},

		{"DL4004 two ENTRYPOINT", "FROM a:1\nENTRYPOINT [\"a\"]\nENTRYPOINT [\"b\"]\n", []hit{{"DL4004", 3}}, "DL4004"},
		{"DL4004 one per stage", "FROM a:1\nENTRYPOINT [\"a\"]\nFROM b:1\nENTRYPOINT [\"b\"]\n", nil, "DL4004"},

		{"DL4006 pipe", "FROM a:1\nRUN curl -s https://x | sh\n", []hit{{"DL4006", 2}}, "DL4006"},
		{"DL4006 sh has no pipefail", "FROM a:1\nSHELL [\"/bin/sh\", \"-o\", \"pipefail\", \"-c\"]\nRUN a | b\n", []hit{{"DL4006", 3}}, "DL4006"},
		{"DL4006 reset by FROM", "FROM a:1\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN a | b\nFROM b:1\nRUN a | b\n", []hit{{"DL4006", 5}}, "DL4006"},
		{"DL4006 pipefail", "FROM a:1\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl -s https://x | sh\nRUN a || b\nRUN echo 'a | b'\n", nil, "DL4006"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []hit
			for _, h := range hits(t, tt.src, Options{}) {
				if h.rule == tt.rule {
					got = append(got, h)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Lint(%q) %s = %v, want %v", tt.src, tt.rule, got, tt.want)
			}
		})
	}
}

func TestCleanMultiStage(t *testing.T) {
	src := `# syntax=docker/dockerfile:1
ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -o /out/app ./cmd/app

FROM python:3.12-slim AS tools
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=20230311 curl=7.88.1-10+deb12u5 \
 && curl -fsSL https://example.com/key | gpg --dearmor > /usr/share/keyrings/x.gpg \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "requests==2.32.3"

FROM alpine:3.20
RUN apk add --no-cache tini=0.19.0-r3 \
 && addgroup -S app && adduser -S app -G app
COPY --from=build /out/app /usr/local/bin/app
USER app
ENTRYPOINT ["/sbin/tini", "--", "/usr/local/bin/app"]
CMD ["serve"]
`
	if got := hits(t, src, Options{}); len(got) != 0 {
		t.Errorf("Lint(multi-stage) = %v, want no findings", got)
	}
}

func TestIgnore(t *testing.T) {
	src := "FROM debian:12\n# hadolint ignore=DL3008, DL3015\nRUN apt-get install -y curl\nRUN apt-get install -y git\n"
	want := []hit{{"DL3008", 4}, {"DL3015", 4}, {"DL3059", 4}}
	if got := hits(t, src, Options{}); !slices.Equal(got, want) {
		t.Errorf("Lint(inline ignore) = %v, want %v", got, want)
	}
	if got := hits(t, src, Options{Ignore: []string{"DL3008", "dl3059"}}); !slices.Equal(got, []hit{{"DL3015", 4}}) {
		t.Errorf("Lint(Ignore) = %v, want [{DL3015 4}]", got)
	}
	global := "# hadolint global ignore=DL3006\nFROM debian\n"
	if got := hits(t, global, Options{}); len(got) != 0 {
		t.Errorf("Lint(global ignore) = %v, want none", got)
	}
}

func TestThreshold(t *testing.T) {
	src := "FROM debian:12\nRUN apk add --no-cache curl\n" // DL3018 warning only
	for _, tt := range []struct {
		threshold Severity
		want      bool
	}{{SeverityNone, false}, {SeverityStyle, true}, {SeverityInfo, true}, {SeverityWarning, true}, {SeverityError, false}} {
		rep, err := Lint([]byte(src), Options{FailureThreshold: tt.threshold})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Failed != tt.want {
			t.Errorf("Lint(threshold %s).Failed = %v, want %v", tt.threshold, rep.Failed, tt.want)
		}
	}
}

func TestParseError(t *testing.T) {
	for _, tt := range []struct {
		src  string
		line int
	}{
		{"FROM a:1\nRUN true\nFROMM b\n", 3},
		{"FROM a:1\nRUN <<EOF\necho hi\n", 2},
		{"# only a comment\n", 0},
		{"FROM a:1 AS\n", 1},
	} {
		_, err := Lint([]byte(tt.src), Options{})
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Lint(%q) error = %v, want ErrInvalidArgument", tt.src, err)
			continue
		}
		if tt.line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("line %d:", tt.line)) {
			t.Errorf("Lint(%q) error = %v, want line %d", tt.src, err, tt.line)
		}
	}
}

func TestHeredocRun(t *testing.T) {
	src := "FROM debian:12\nRUN <<EOF\nset -e\napt-get install -y --no-install-recommends curl\nEOF\n"
	want := []hit{{"DL3008", 2}}
	if got := hits(t, src, Options{}); !slices.Equal(got, want) {
		t.Errorf("Lint(heredoc) = %v, want %v", got, want)
	}
}

func TestParseShell(t *testing.T) {
	tests := []struct {
		src  string
		want []string // name args…, one string per command
		pipe bool
	}{
		{`a && b || c; d`, []string{"a", "b", "c", "d"}, false},
		{`FOO=1 apt-get install -y "x y" 'z' 2>&1 >/dev/null`, []string{"apt-get install -y x y z"}, false},
		{"echo a \\\n  b | tee f", []string{"echo a b", "tee f"}, true},
		{`if [ -f x ]; then cd /; fi`, []string{"[ -f x ]", "cd /"}, false},
		{`echo "$(cd /x && pwd)" # cd here`, []string{"echo $(cd /x && pwd)"}, false},
		{`find . -exec rm {} \; && echo ok`, []string{"find . -exec rm {} ;", "echo ok"}, false},
	}
	for _, tt := range tests {
		s := parseShell(tt.src)
		var got []string
		for _, c := range s.cmds {
			got = append(got, strings.Join(append([]string{c.name}, c.args...), " "))
		}
		if !slices.Equal(got, tt.want) || s.pipe != tt.pipe {
			t.Errorf("parseShell(%q) = %q pipe %v, want %q pipe %v", tt.src, got, s.pipe, tt.want, tt.pipe)
		}
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{SeverityNone, SeverityStyle, SeverityInfo, SeverityWarning, SeverityError} {
		b, _ := s.MarshalText()
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v", b, back, err, s)
		}
	}
	if _, err := ParseSeverity("fatal"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ParseSeverity(%q) error = %v, want ErrInvalidArgument", "fatal", err)
	}
}
