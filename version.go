package containerization

import "runtime/debug"

// Version is Myrmex's version: the module version it was built at, or "(devel)" for a build from a work tree.
func Version() string { return version() }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/codomyrmex/containerization" {
				return d.Version
			}
		}
		if bi.Main.Path == "github.com/codomyrmex/containerization" && bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "(devel)"
}
