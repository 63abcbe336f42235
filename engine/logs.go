package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// LogOptions selects which log lines to read. The zero value reads all of stdout and stderr.
type LogOptions struct {
	// Tail is the number of lines to read from the end; zero or negative reads all.
	Tail int
	// Since and Until bound the lines by time: an RFC 3339 time, a Unix timestamp, or a duration back from
	// now ("10m").
	Since, Until string
	// Timestamps prefixes every line with its RFC 3339 time.
	Timestamps bool
	// Stdout and Stderr select the streams; when both are false, both are read.
	Stdout, Stderr bool
	// Follow keeps reading as the container writes, until it stops or ctx ends.
	Follow bool
}

// Logs is a container's output, in order and split by stream.
type Logs struct {
	Combined string `json:"logs"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

// ParseLogTime turns since/until values into the engine's form: RFC 3339 times, Unix timestamps
// ("1700000000.5") and durations back from now ("10m", "1h30m").
func ParseLogTime(s string, now time.Time) (string, error) {
	if s == "" {
		return "", nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		t := now.Add(-d)
		return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()), nil
		}
	}
	return "", invalid("time %q: want an RFC 3339 time, a Unix timestamp or a duration such as 10m", s)
}

func (o LogOptions) api(now time.Time) (client.ContainerLogsOptions, error) {
	since, err := ParseLogTime(o.Since, now)
	if err != nil {
		return client.ContainerLogsOptions{}, err
	}
	until, err := ParseLogTime(o.Until, now)
	if err != nil {
		return client.ContainerLogsOptions{}, err
	}
	out := client.ContainerLogsOptions{
		ShowStdout: o.Stdout || !o.Stderr,
		ShowStderr: o.Stderr || !o.Stdout,
		Since:      since,
		Until:      until,
		Timestamps: o.Timestamps,
		Follow:     o.Follow,
		Tail:       "all",
	}
	if o.Tail > 0 {
		out.Tail = strconv.Itoa(o.Tail)
	}
	return out, nil
}

// StreamLogs copies a container's output to stdout and stderr as the engine sends it. With opts.Follow it
// returns when the container stops or ctx ends (a cancelled ctx is not an error then).
func (c *Client) StreamLogs(ctx context.Context, name string, opts LogOptions, stdout, stderr io.Writer) error {
	apiOpts, err := opts.api(time.Now())
	if err != nil {
		return err
	}
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return err
	}
	rc, err := c.api.ContainerLogs(ctx, ins.ID, apiOpts)
	if err != nil {
		return fmt.Errorf("reading logs of %q: %w", name, c.classify(err))
	}
	defer closeQuietly(rc)
	if ins.Config != nil && ins.Config.Tty {
		// A TTY merges the streams at the source: everything arrives raw, as stdout.
		_, err = io.Copy(stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	if err != nil && opts.Follow && ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading logs of %q: %w", name, err)
	}
	return nil
}

// Logs reads a container's output into memory.
func (c *Client) Logs(ctx context.Context, name string, opts LogOptions) (Logs, error) {
	var all, out, errb bytes.Buffer
	err := c.StreamLogs(ctx, name, opts, io.MultiWriter(&all, &out), io.MultiWriter(&all, &errb))
	return Logs{Combined: all.String(), Stdout: out.String(), Stderr: errb.String()}, err
}
