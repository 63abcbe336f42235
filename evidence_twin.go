package containerization

import "time"

// twinTimeout bounds the registry requests a gate makes to find an engine image in its registry for the scans
// attached there (engineSignedTarget): past it, the gate scans.
const twinTimeout = 10 * time.Second
