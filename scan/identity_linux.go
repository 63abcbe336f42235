package scan

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// FileIdentity names the content of a file, such as a docker save archive, for Options.Identity: its absolute path,
// device, inode, size, and modification and change times to the nanosecond. Any write to the file, or a new file
// renamed over it, changes its change time (ctime), which no system call sets back; a copy elsewhere is another
// identity. It returns "" when the file cannot be read, and the scan then has no identity.
func FileIdentity(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(abs)
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("file %q dev %d ino %d size %d mtime %d.%09d ctime %d.%09d", abs, st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}
