// Package sensor is the program the optimizer copies into a container it profiles or probes: a static binary
// that never stays in an image. It has three commands:
//
//   - record: watch the container's root filesystem with fanotify (opens, executions, directory reads) while
//     it runs the image's own entrypoint and command as the image's user, without the rights the watching
//     needs; write what was read to a report file when the program ends (or on SIGTERM, which it forwards),
//     and exit with the program's status.
//   - http: ask a server in the same network namespace for URLs (waiting for the first to answer), and print
//     each answer's status and body as JSON.
//   - exec (internal): drop the watcher's rights, take the image user's identity and exec the program.
//
// The container running record needs CAP_SYS_ADMIN (fanotify); the program it runs does not keep it.
package sensor

// Dir is where the optimizer puts the sensor in a container, and where record writes its report.
const Dir = "/.myrmex-sensor"

// Binary and ReportFile are the sensor's and the report's paths in a container.
const (
	Binary     = Dir + "/sensor"
	ReportFile = Dir + "/report.json"
)

// Bounds of a report: a program that opens more distinct paths than this is not profiled (the report says so
// and the optimizer keeps everything).
const (
	MaxPaths    = 1 << 20
	MaxPathSize = 4096
	// MaxBody is how much of an HTTP answer's body the http command prints.
	MaxBody = 64 << 10
)

// Access kinds in a report.
const (
	Read = "read"
	Exec = "exec"
	List = "list" // a directory opened (read)
)

// Report is what record writes.
type Report struct {
	Files    map[string]string `json:"files"`              // path → Read, Exec or List (Exec wins over Read)
	Overflow bool              `json:"overflow,omitempty"` // events were lost or MaxPaths reached: incomplete
	ExitCode int               `json:"exit_code"`
	Error    string            `json:"error,omitempty"`
}

// HTTPResult is one answer of the http command.
type HTTPResult struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
	Body   string `json:"body"`
	Error  string `json:"error,omitempty"`
}
