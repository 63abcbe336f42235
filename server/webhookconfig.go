package server

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/codomyrmex/containerization/errdefs"
)

// AdmissionPath is the admission webhook's route.
const AdmissionPath = "/v1/admission"

// WebhookName is the name of the webhook inside the configuration, as the API server's denials quote it
// (`admission webhook "policy.myrmex.codomyrmex.io" denied the request: …`).
const WebhookName = "policy.myrmex.codomyrmex.io"

// WebhookOptions describe the ValidatingWebhookConfiguration that registers a server as the cluster's admission
// webhook ([WebhookConfiguration]).
type WebhookOptions struct {
	// Name is the configuration's name (default "myrmex-policy").
	Name string
	// URL is where the API server calls the server, https://HOST:PORT (the path is AdmissionPath). Service is
	// instead the server's Service when it runs in the cluster: "NAMESPACE/NAME" or "NAMESPACE/NAME:PORT" (443).
	// One of the two.
	URL, Service string
	// Certificate is the server's TLS certificate (PEM, as serve --tls-cert reads it). CA is the certificate of
	// the authority that signed it (PEM), the caBundle; empty means the certificate itself is the caBundle, which
	// the API server then trusts as it is (self-signed, or pinned until it is renewed). The certificate must be
	// valid now for the host the API server dials (URL's, or NAME.NAMESPACE.svc).
	Certificate, CA []byte
	// FailurePolicy is what the API server does when the server does not answer: Fail (the default: the request
	// is denied) or Ignore (it is admitted unchecked).
	FailurePolicy string
	// TimeoutSeconds is how long the API server waits for an answer: 1 to 30, default 10. It should exceed the
	// server's own deadline (AdmissionConfig.Timeout, 8s by default), so that a slow check is denied with its reason
	// rather than cut off.
	TimeoutSeconds int32
	// NamespaceLabels, when set, limit the webhook to the namespaces that carry these labels.
	NamespaceLabels map[string]string
	// ExcludeNamespaces are never held: default kube-system, and the Service's own namespace (a server that
	// held its own pods could not be started again while it is down).
	ExcludeNamespaces []string
}

// WebhookConfiguration is the ValidatingWebhookConfiguration that sends the server the creates and updates of
// Pods and workloads (Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, ReplicationControllers),
// with its certificate's CA as the caBundle. Bad options are ErrInvalidArgument.
func WebhookConfiguration(o WebhookOptions) (*admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	if o.Name == "" {
		o.Name = "myrmex-policy"
	}
	if errs := validation.IsDNS1123Subdomain(o.Name); len(errs) > 0 {
		return nil, fmt.Errorf("%w: name %q: %s", errdefs.ErrInvalidArgument, o.Name, strings.Join(errs, "; "))
	}
	if o.TimeoutSeconds == 0 {
		o.TimeoutSeconds = 10
	}
	if o.TimeoutSeconds < 1 || o.TimeoutSeconds > 30 {
		return nil, fmt.Errorf("%w: timeout %ds: the API server takes 1 to 30 seconds", errdefs.ErrInvalidArgument, o.TimeoutSeconds)
	}
	fp := admissionregistrationv1.Fail
	switch o.FailurePolicy {
	case "", string(admissionregistrationv1.Fail):
	case string(admissionregistrationv1.Ignore):
		fp = admissionregistrationv1.Ignore
	default:
		return nil, fmt.Errorf("%w: failure policy %q: want Fail or Ignore", errdefs.ErrInvalidArgument, o.FailurePolicy)
	}
	var cc admissionregistrationv1.WebhookClientConfig
	var host string
	exclude := slices.Clone(o.ExcludeNamespaces)
	if len(exclude) == 0 {
		exclude = []string{"kube-system"}
	}
	switch {
	case (o.URL == "") == (o.Service == ""):
		return nil, fmt.Errorf("%w: the webhook needs a URL or a Service, one of the two", errdefs.ErrInvalidArgument)
	case o.URL != "":
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/" && u.Path != AdmissionPath) {
			return nil, fmt.Errorf("%w: URL %q: want https://HOST[:PORT] (the API server calls webhooks over TLS only)", errdefs.ErrInvalidArgument, o.URL)
		}
		u.Path = AdmissionPath
		s := u.String()
		cc.URL, host = &s, u.Hostname()
	default:
		ns, name, ok := strings.Cut(o.Service, "/")
		name, portStr, hasPort := strings.Cut(name, ":")
		port := int64(443)
		if hasPort {
			var err error
			if port, err = strconv.ParseInt(portStr, 10, 32); err != nil || port < 1 || port > 65535 {
				ok = false
			}
		}
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1035Label(name)) > 0 {
			return nil, fmt.Errorf("%w: service %q: want NAMESPACE/NAME or NAMESPACE/NAME:PORT", errdefs.ErrInvalidArgument, o.Service)
		}
		path, p32 := AdmissionPath, int32(port)
		cc.Service = &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name, Path: &path, Port: &p32}
		host = name + "." + ns + ".svc"
		if !slices.Contains(exclude, ns) {
			exclude = append(exclude, ns)
		}
	}
	bundle, err := caBundle(o.Certificate, o.CA, host)
	if err != nil {
		return nil, err
	}
	cc.CABundle = bundle
	selector := &metav1.LabelSelector{MatchLabels: o.NamespaceLabels, MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: exclude}}}
	namespaced := admissionregistrationv1.NamespacedScope
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &namespaced}}
	}
	equivalent := admissionregistrationv1.Equivalent
	none := admissionregistrationv1.SideEffectClassNone // it decides and changes nothing: dry runs are sent too
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: admissionregistrationv1.SchemeGroupVersion.String(), Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: map[string]string{"app.kubernetes.io/name": "myrmex"}},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         WebhookName,
			ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{
				rule("", "pods", "replicationcontrollers"),
				rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
				rule("batch", "jobs", "cronjobs"),
			},
			FailurePolicy:           &fp,
			MatchPolicy:             &equivalent,
			NamespaceSelector:       selector,
			SideEffects:             &none,
			TimeoutSeconds:          &o.TimeoutSeconds,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}, nil
}

// caBundle is the PEM the API server trusts the server's certificate by: ca, else the certificate itself (the
// API server's TLS client, Go's, trusts a certificate found among its roots as it is); the certificate must
// verify against it for host, now, as the API server will verify it.
func caBundle(certPEM, caPEM []byte, host string) ([]byte, error) {
	certs, err := parseCerts(certPEM, "the server's certificate")
	if err != nil {
		return nil, err
	}
	bundle := caPEM
	if len(bundle) == 0 {
		bundle = certPEM
	}
	roots, err := parseCerts(bundle, "the CA")
	if err != nil {
		return nil, err
	}
	pool, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	for _, c := range certs[1:] { // a chain file: the leaf, then its intermediates
		inter.AddCert(c)
	}
	if h := net.ParseIP(host); h != nil {
		host = h.String()
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: host, Roots: pool, Intermediates: inter, CurrentTime: time.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("%w: the API server would refuse the server's certificate for %s: %v", errdefs.ErrInvalidArgument, host, err)
	}
	var out []byte
	for _, c := range roots {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}

// maxCerts bounds the certificates read from one PEM file.
const maxCerts = 100

func parseCerts(data []byte, what string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(data) > 0 {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if len(out) == maxCerts {
			return nil, fmt.Errorf("%w: %s: more than %d certificates", errdefs.ErrInvalidArgument, what, maxCerts)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errdefs.ErrInvalidArgument, what, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", errdefs.ErrInvalidArgument, what)
	}
	return out, nil
}
