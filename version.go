package containerization

import "runtime/debug"

// Version is Myrmex's version: the module version it was built at, or "(devel)" for a build from a work tree.
func Version() string { return version() }

// depVersion is the version of the module at path that this binary was built with, or "" when it has no build
// information (a test binary built from a work tree still has its dependencies' versions).
func depVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return ""
}

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
