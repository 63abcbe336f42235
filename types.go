package containerization

import (
	"time"

	"github.com/codomyrmex/containerization/engine"
	"github.com/codomyrmex/containerization/kube"
	"github.com/codomyrmex/containerization/optimize"
	"github.com/codomyrmex/containerization/policy"
	"github.com/codomyrmex/containerization/registry"
	"github.com/codomyrmex/containerization/scan/inventory"
)

// ContainerConfig is the specification's ContainerConfig; see [engine.ContainerConfig] for every field's forms.
type ContainerConfig = engine.ContainerConfig

// Resources is the resources block of [ContainerConfig].
type Resources = engine.Resources

// PortBindings is the ports field of [ContainerConfig]; see [engine.PortBindings] for the forms.
type PortBindings = engine.PortBindings

// VolumeMount is a value of the volumes field of [ContainerConfig]; see [engine.VolumeMount].
type VolumeMount = engine.VolumeMount

// ContainerMetrics is the specification's ContainerMetrics; see [engine.ComputeMetrics] for the formulas.
type ContainerMetrics = engine.ContainerMetrics

// BuildResult is what build_containers returns. The first eight fields are the specification's.
type BuildResult struct {
	ImageName            string  `json:"image_name"`
	ImageID              string  `json:"image_id"`
	BuildTime            float64 `json:"build_time"` // seconds, the build alone
	SizeMB               float64 `json:"size_mb"`
	Layers               int     `json:"layers"`
	SecurityScanPassed   bool    `json:"security_scan_passed"`
	VulnerabilitiesFound int     `json:"vulnerabilities_found"`
	OptimizationApplied  bool    `json:"optimization_applied"`

	// Tags are the names the image was stored under in the engine.
	Tags []string `json:"tags"`
	// Steps and CacheHits count the build's steps and those served from the build cache.
	Steps     int `json:"steps"`
	CacheHits int `json:"cache_hits"`
	// Lint holds the Dockerfile's lint findings.
	Lint []LintFinding `json:"lint"`
	// Scan is the security scan of the built image; nil when scanning was off.
	Scan *SecurityScanResult `json:"scan,omitempty"`
	// Optimization is the optimization of the built image (BuildOptions.Optimization), verified or not.
	Optimization *OptimizationResult `json:"optimization,omitempty"`
	// ImageDigest and PushedTo say where the image was pushed, when it was.
	ImageDigest string `json:"image_digest,omitempty"`
	PushedTo    string `json:"pushed_to,omitempty"`
	// Recommendations gather the lint findings' and the scan's.
	Recommendations []string `json:"recommendations"`
	// PolicyVerdict is the policy's verdict at the build gate, when a policy is set.
	PolicyVerdict *policy.Verdict `json:"policy_verdict,omitempty"`
}

// LintFinding is one Dockerfile lint finding (hadolint's rule ids).
type LintFinding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Line     int    `json:"line"`
	Message  string `json:"message"`
}

// RegistryResult is what manage_container_registry returns. The first eight fields are the specification's.
type RegistryResult struct {
	Operation    string   `json:"operation"`
	ImageName    string   `json:"image_name"`
	RegistryURL  string   `json:"registry_url"`
	Success      bool     `json:"success"`
	ImageDigest  string   `json:"image_digest"`
	Tags         []string `json:"tags"`
	SizeMB       float64  `json:"size_mb"`
	ErrorMessage string   `json:"error_message"`

	// Reference is the full reference operated on (for push and copy, the destination).
	Reference string `json:"reference,omitempty"`
	// RegistryType is the kind of registry, given or detected: dockerhub, ecr, acr, gcr, harbor or generic.
	RegistryType string `json:"registry_type,omitempty"`
	// MediaType is the manifest's media type (an index for a multi-platform image).
	MediaType string `json:"media_type,omitempty"`
	// Repositories is the catalog, for list without an image name.
	Repositories []string `json:"repositories,omitempty"`
	// TagDetails say what each tag names (digest, media type, size), for list with RegistryOptions.TagDetails.
	TagDetails []registry.TagDetail `json:"tag_details,omitempty"`
	// PolicyVerdict is the policy's verdict at the push gate (push, copy), when a policy is set.
	PolicyVerdict *policy.Verdict `json:"policy_verdict,omitempty"`
	// Evidence is the scan attached to the pushed image (RegistryOptions.AttachScan).
	Evidence *policy.Evidence `json:"evidence,omitempty"`
	// SignaturesCopied is how many signatures a copy took with the image (RegistryOptions.CopySignatures).
	SignaturesCopied int `json:"signatures_copied,omitempty"`
	// Via (pull) says how the image reached the engine: "engine" (the engine pulled it) or "load" (Myrmex
	// fetched it and loaded it); see RegistryOptions.PullVia.
	Via string `json:"via,omitempty"`
}

// OptimizationResult is what optimize_containers returns.
type OptimizationResult struct {
	OriginalImage          string   `json:"original_image"`
	OptimizedImage         string   `json:"optimized_image"`
	OptimizationType       string   `json:"optimization_type"`
	SizeReductionMB        float64  `json:"size_reduction_mb"`
	PerformanceImprovement float64  `json:"performance_improvement"`
	SecurityImprovements   []string `json:"security_improvements"`
	LayersReduced          int      `json:"layers_reduced"`
	BuildTime              float64  `json:"build_time"` // seconds, the whole call

	// ImageDigest and PushedTo say where the optimized image was pushed, when it was (OptimizeOptions.Push).
	ImageDigest string `json:"image_digest,omitempty"`
	PushedTo    string `json:"pushed_to,omitempty"`

	// Beyond the specification: what a caller needs to trust the result (sizes, layers and files before and
	// after, what was removed and why, the probe on both images, the scans on both).
	*optimize.Result
}

// KubernetesDeployment is the specification's KubernetesDeployment: a deployment's configuration and status.
type KubernetesDeployment struct {
	Name        string               `json:"name"`
	Namespace   string               `json:"namespace"`
	Replicas    int                  `json:"replicas"`
	Image       string               `json:"image"`
	Ports       []int                `json:"ports"`
	Environment map[string]string    `json:"environment"`
	Resources   ResourceRequirements `json:"resources"`
	Status      string               `json:"status"` // pending, running, failed, succeeded
	Pods        []PodStatus          `json:"pods"`
	Services    []string             `json:"services"`
	CreatedAt   time.Time            `json:"created_at"`
	LastUpdated time.Time            `json:"last_updated"`

	// Beyond the specification: what a caller needs to act on the result. Application is the name the
	// deployment was applied (or read) under, which the Client's methods take; its workload's name is Name, and
	// differs when the manifests name it otherwise.
	Application   string             `json:"application"`
	Kind          string             `json:"kind,omitempty"` // Deployment, StatefulSet or DaemonSet
	ReadyReplicas int                `json:"ready_replicas"`
	Revision      int64              `json:"revision,omitempty"`
	Message       string             `json:"message,omitempty"` // why it is pending or failed
	DryRun        bool               `json:"dry_run,omitempty"`
	Changes       []KubernetesChange `json:"changes,omitempty"` // what the apply did (or would do) per object
	Pruned        []KubernetesChange `json:"pruned,omitempty"`
	// PolicyVerdict is the policy's verdict at the apply gate, when a policy is set.
	PolicyVerdict *policy.Verdict `json:"policy_verdict,omitempty"`
}

// KubernetesRevision is one revision of a deployment's pod template, as its history lists it.
type KubernetesRevision = kube.Revision

// ResourceRequirements is the resources block of [KubernetesDeployment].
type ResourceRequirements struct {
	Requests ResourceAmounts `json:"requests"`
	Limits   ResourceAmounts `json:"limits"`
}

// ResourceAmounts is a CPU and memory pair in Kubernetes quantities ("500m", "256Mi").
type ResourceAmounts struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// PodStatus is one pod of a [KubernetesDeployment].
type PodStatus struct {
	Name     string `json:"name"`
	Phase    string `json:"phase"`
	Ready    bool   `json:"ready"`
	Restarts int    `json:"restarts"`
	Reason   string `json:"reason"`

	Container string `json:"container,omitempty"` // the container the reason is about
	Message   string `json:"message,omitempty"`
	Node      string `json:"node,omitempty"`
}

// SecurityScanResult is the specification's SecurityScanResult. The first eleven fields are the specification's;
// the rest say what a caller needs beyond them.
type SecurityScanResult struct {
	ImageName string `json:"image_name"`
	// ImageDigest is the manifest digest of the image scanned when it was read from a registry; Evidence is
	// where the scan was attached to it (ScanOptions.Attach).
	ImageDigest string           `json:"image_digest,omitempty"`
	Evidence    *policy.Evidence `json:"evidence,omitempty"`
	// SBOMEvidence is where the image's SBOM (CycloneDX, every package found) was attached beside the scan.
	SBOMEvidence    *policy.Evidence `json:"sbom_evidence,omitempty"`
	ScanTimestamp   time.Time        `json:"scan_timestamp"`
	ScanDuration    float64          `json:"scan_duration"` // seconds
	Vulnerabilities []Vulnerability  `json:"vulnerabilities"`
	// ComplianceScore is 0–100 (see package scan/compliance for the formula); null when the scan type ran no
	// compliance checks (quick), rather than a zero that would read as a failing image.
	ComplianceScore *float64 `json:"compliance_score"`
	CriticalCount   int      `json:"critical_count"`
	HighCount       int      `json:"high_count"`
	MediumCount     int      `json:"medium_count"`
	LowCount        int      `json:"low_count"`
	Recommendations []string `json:"recommendations"`
	ScanTool        string   `json:"scan_tool"`

	// ScanType is full, quick or compliance.
	ScanType string `json:"scan_type"`
	// UnknownCount counts findings whose severity no source rates.
	UnknownCount int `json:"unknown_count"`
	// PolicyPassed is false when a finding is at or above the severity threshold.
	PolicyPassed bool `json:"policy_passed"`
	// Ignored are the findings an ignore rule matched, with the rule's reason.
	Ignored []Vulnerability `json:"ignored,omitempty"`
	// Compliance lists every compliance check and its outcome.
	Compliance []ComplianceCheck `json:"compliance,omitempty"`
	// PackagesScanned counts the packages found in the image; PackageEcosystems counts them by ecosystem
	// (Debian:12, npm, Go…), the SBOM's summary.
	PackagesScanned   int            `json:"packages_scanned"`
	PackageEcosystems map[string]int `json:"package_ecosystems,omitempty"`
	// Warnings say what the scan could not see: an ecosystem missing from the database, a stale database,
	// files skipped.
	Warnings []string `json:"warnings"`
	// Database describes the advisory database the scan matched against.
	Database *DatabaseStatus `json:"database,omitempty"`

	packages []inventory.Package // what the scan found, for the SBOM
}

// Vulnerability is one finding of a [SecurityScanResult]. The first six fields are the specification's.
type Vulnerability struct {
	CVEID        string `json:"cve_id"`
	Severity     string `json:"severity"` // critical, high, medium, low, or unknown
	Package      string `json:"package"`
	Version      string `json:"version"`
	FixedVersion string `json:"fixed_version"` // empty when no fix exists
	Description  string `json:"description"`

	ID        string   `json:"id,omitempty"`      // the advisory's own id (DSA-…, GHSA-…, GO-…)
	Aliases   []string `json:"aliases,omitempty"` // its other ids
	Score     float64  `json:"score,omitempty"`   // CVSS base score, when a vector is known
	Vector    string   `json:"vector,omitempty"`
	Ecosystem string   `json:"ecosystem,omitempty"`
	PURL      string   `json:"purl,omitempty"` // the package URL of the affected package
	// SourcePackage is the source package the advisory names, for a binary package built from it (Debian).
	SourcePackage string `json:"source_package,omitempty"`
	Layer         string `json:"layer,omitempty"` // diff ID of the layer that brought the package in
	URL           string `json:"url,omitempty"`
	IgnoreReason  string `json:"ignore_reason,omitempty"`
}

// ComplianceCheck is one compliance check and its outcome.
type ComplianceCheck struct {
	ID          string   `json:"id"`
	Level       string   `json:"level"` // FATAL, WARN, INFO
	Title       string   `json:"title"`
	Passed      bool     `json:"passed"`
	Ignored     bool     `json:"ignored,omitempty"`
	Details     []string `json:"details,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
}

// DatabaseStatus describes the local advisory database.
type DatabaseStatus struct {
	Dir        string         `json:"dir"`
	UpdatedAt  time.Time      `json:"updated_at"`
	AgeHours   float64        `json:"age_hours"`
	Records    int            `json:"records"`
	Ecosystems map[string]int `json:"ecosystems"`
}

// ContainerRegistry is the specification's ContainerRegistry: a registry connection and its management.
type ContainerRegistry struct {
	// Name is the name it is saved under (myrmex registry add NAME); operations take it in place of a URL.
	Name                string              `json:"name,omitempty"`
	URL                 string              `json:"url"`
	Type                string              `json:"type"` // dockerhub, ecr, acr, gcr, harbor
	Credentials         RegistryCredentials `json:"credentials"`
	Repositories        []string            `json:"repositories"`
	SecurityScanEnabled bool                `json:"security_scan_enabled"`
	RetentionPolicy     map[string]any      `json:"retention_policy"`
	// CAFile is a PEM bundle of certificate authorities to trust for this registry besides the system's.
	CAFile string `json:"ca_file,omitempty"`
}

// RegistryCredentials are a registry's credentials. They are never written out: Password and Token marshal as
// empty, whatever they hold.
type RegistryCredentials struct {
	Username string `json:"username"`
	Password Secret `json:"password"`
	Token    Secret `json:"token"`
}

// Secret is a string that never leaves the process in JSON: it marshals as "" (or "********" when set).
type Secret string

// MarshalJSON hides the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"********"`), nil
}
