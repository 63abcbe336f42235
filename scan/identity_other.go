//go:build !linux

package scan

// FileIdentity names the content of a file for Options.Identity; on this system, where the scanner cannot read a
// file's change time, it returns "" and scans have no identity.
func FileIdentity(path string) string { return "" }
