// Package containerization is Myrmex, the containerization module of Codomyrmex: one library that builds, runs,
// scans, optimizes, ships and deploys containers on the real engines underneath.
//
// This package is the facade of the specification (containerization-api.md): its six functions
// ([BuildContainers], [ManageContainers], [OrchestrateKubernetes], [ScanContainerSecurity],
// [ManageContainerRegistry], [OptimizeContainers]), its data structures, with JSON field names spelled as the
// specification spells them, and its six error types. It validates input and calls the capability packages
// below it: engine (containers on the Docker Engine API), build (BuildKit), registry (OCI registries), scan
// (package inventory, OSV advisories, compliance checks) and kube (Kubernetes); optimize is specified and not
// built yet ([ErrNotImplemented]).
//
// Every error returned here is one of the six typed errors, each wrapping one of the sentinels ([ErrNotFound],
// [ErrAlreadyExists], [ErrInvalidArgument], …): test the category with errors.Is and read the details with
// errors.As. [NewErrorObject] describes an error for callers outside Go: the class, a stable code, the subject.
package containerization
