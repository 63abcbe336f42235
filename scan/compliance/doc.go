// Package compliance checks a container image against the CIS Docker Benchmark image checks and the Dockle
// checkpoints, with the ids, levels and meaning that Dockle (github.com/goodwithtech/dockle) gives them, and
// turns the outcome into a score.
//
// [Check] reads the image configuration (user, environment, healthcheck, volumes, history) and walks the
// image's merged filesystem once, streaming the layers in order. Whiteouts (.wh.name) and opaque directories
// (.wh..wh..opq) are applied as an overlay filesystem applies them, so a file deleted or replaced in a later
// layer does not count. Only the paths the checks care about are remembered; the content of a file is read
// only for /etc/passwd, /etc/shadow, /etc/group and the few files that may hold a secret (private keys, .npmrc,
// .pypirc, .netrc, .docker/config.json), and never more than [Options.MaxFileSize] bytes of it, so memory does
// not grow with the size of the image. A whiteout costs what it deletes. An entry name longer than
// [MaxNameBytes] or deeper than [MaxNameDepth] makes Check refuse the image with a [*NameError], and the
// context's deadline stops the walk even inside one long entry.
//
// The checks, in the order of the report:
//
//	CIS-DI-0001 WARN   Create a user for the container: USER is not empty, root or UID 0
//	CIS-DI-0005 INFO   Enable Content trust: DOCKER_CONTENT_TRUST=1 in the scanning process
//	CIS-DI-0006 WARN   Add HEALTHCHECK: the config has a healthcheck that is not NONE
//	CIS-DI-0007 FATAL  apt-get update alone: every RUN with apt-get update also installs or upgrades
//	CIS-DI-0008 INFO   setuid/setgid files: regular files with either bit (listed, to be confirmed)
//	CIS-DI-0009 FATAL  COPY instead of ADD: ADD in the history, except the first one (the base's root filesystem)
//	CIS-DI-0010 FATAL  credentials: secret-looking ENV names and build arguments, secret files by name or content
//	DKL-DI-0001 FATAL  sudo in a RUN of the history
//	DKL-DI-0002 FATAL  VOLUME of a system directory (/, /etc, /proc, /sys, /dev, /usr…)
//	DKL-DI-0003 WARN   apt-get upgrade/dist-upgrade or apk upgrade in a RUN of the history
//	DKL-DI-0004 FATAL  apk add without --no-cache
//	DKL-DI-0005 FATAL  apt caches left in the filesystem: /var/lib/apt/lists/*, /var/cache/apt/archives/*.deb
//	DKL-DI-0006 WARN   the reference uses the latest tag, named or implied
//	DKL-LI-0001 FATAL  /etc/shadow entries with an empty password
//	DKL-LI-0002 FATAL  UIDs shared in /etc/passwd, GIDs shared in /etc/group
//	DKL-LI-0003 INFO   unnecessary files: .git, .cache, .idea…, Dockerfile, .DS_Store, /tmp, editor backups
//
// A check that finds nothing to look at (no /etc/shadow, say) passes with a note in its details, where Dockle
// would say SKIP.
//
// The compliance score is 100 × (sum of the weights of the passed checks) / (sum of the weights of the checks
// not ignored), with FATAL = 10, WARN = 5, INFO = 1, rounded to one decimal; 100 when every check is ignored.
// See [ScoreFormula] and [Score].
package compliance
