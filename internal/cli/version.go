package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// version is Myrmex's version. Builds from a module version (go install …@v1.2.3) know it from their build
// information; others can set it with -ldflags "-X github.com/codomyrmex/containerization/internal/cli.version=v1.2.3".
var version = ""

// versionInfo is what myrmex version reports.
type versionInfo struct {
	Version   string         `json:"version"`
	Commit    string         `json:"commit"`
	Modified  bool           `json:"modified"`
	GoVersion string         `json:"go_version"`
	Platform  string         `json:"platform"`
	Engine    *engineVersion `json:"engine"` // null when no engine answers
}

// engineVersion is the engine's side of myrmex version.
type engineVersion struct {
	Host          string `json:"host"`
	Version       string `json:"version"`
	APIVersion    string `json:"api_version"`
	MinAPIVersion string `json:"min_api_version"`
	NegotiatedAPI string `json:"negotiated_api_version"`
	Platform      string `json:"platform,omitempty"`
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of myrmex and, if it answers, of the engine",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := buildVersion()
			ev, err := engineVersionOf(cmd.Context(), g)
			if err != nil {
				// The engine is an extra here: say why it is missing, and still succeed.
				fmt.Fprintf(g.errOut, "myrmex: %v\n", err)
			}
			v.Engine = ev
			if g.structured() {
				return g.encode(v)
			}
			tw := newTable(g.out)
			commit := v.Commit
			if commit == "" {
				commit = "unknown"
			} else if v.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(tw, "Myrmex:\t%s\n", v.Version)
			fmt.Fprintf(tw, "Commit:\t%s\n", commit)
			fmt.Fprintf(tw, "Go:\t%s %s\n", v.GoVersion, v.Platform)
			if ev != nil {
				fmt.Fprintf(tw, "Engine:\t%s (API %s, speaking %s) at %s\n", ev.Version, ev.APIVersion, ev.NegotiatedAPI, ev.Host)
			} else {
				fmt.Fprintf(tw, "Engine:\tunavailable\n")
			}
			return tw.Flush()
		},
	}
}

func buildVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v.Version == "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// engineVersionOf asks the engine for its version, giving up after a few seconds.
func engineVersionOf(ctx context.Context, g *globalOptions) (*engineVersion, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	eng, err := g.engine(ctx)
	if err != nil {
		return nil, err
	}
	sv, err := eng.API().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return nil, fmt.Errorf("asking the engine at %s for its version: %w", eng.Host(), err)
	}
	return &engineVersion{
		Host:          eng.Host(),
		Version:       sv.Version,
		APIVersion:    sv.APIVersion,
		MinAPIVersion: sv.MinAPIVersion,
		NegotiatedAPI: eng.APIVersion(),
		Platform:      sv.Platform.Name,
	}, nil
}
