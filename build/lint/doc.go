// Package lint checks Dockerfiles against the hadolint rules that matter most for builds, reading them with
// BuildKit's own parser (frontend/dockerfile/parser and instructions), so that what it lints is exactly what
// BuildKit builds, line numbers included.
//
// Rules, with hadolint's ids and severities:
//
//	DL3000 error    Use absolute WORKDIR
//	DL3002 warning  Last USER of a stage should not be root
//	DL3003 warning  Use WORKDIR to switch to a directory (cd in RUN)
//	DL3004 error    Do not use sudo
//	DL3006 warning  Always tag the version of an image explicitly (scratch, digests, ${ARGS} and earlier stages are exempt)
//	DL3007 warning  Using latest is prone to errors
//	DL3008 warning  Pin versions in apt-get install (apt install too)
//	DL3009 info     Delete the apt-get lists after installing something (stages that reach the image only)
//	DL3013 warning  Pin versions in pip install
//	DL3015 info     Avoid additional packages by specifying --no-install-recommends
//	DL3016 warning  Pin versions in npm install
//	DL3018 warning  Pin versions in apk add
//	DL3019 info     Use the --no-cache switch for apk add
//	DL3020 error    Use COPY instead of ADD for files and folders (URLs and tar archives are fine)
//	DL3025 warning  Use arguments JSON notation for CMD and ENTRYPOINT
//	DL3042 warning  Avoid use of cache directory with pip (unless PIP_NO_CACHE_DIR or a cache mount)
//	DL3059 info     Multiple consecutive RUN instructions
//	DL4000 error    MAINTAINER is deprecated
//	DL4003 warning  Multiple CMD instructions
//	DL4004 error    Multiple ENTRYPOINT instructions
//	DL4006 warning  Set the SHELL option -o pipefail before RUN with a pipe in it
//
// RUN scripts are split into simple commands by a small tokenizer (quotes, escapes, continuations, && || ; |,
// redirections, subshells); RUN flags such as --mount are read by BuildKit and never reach it, and a heredoc
// RUN is linted on the heredoc's content. Rules are silenced with Options.Ignore, with a
// "# hadolint ignore=DL3008,DL3015" comment directly above an instruction, or with
// "# hadolint global ignore=…" anywhere, as in hadolint.
package lint
