package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
)

// ProbeOptions configures [Probe]. The zero value verifies an https URL against the system's roots.
type ProbeOptions struct {
	// Certificate, when set, is the PEM certificate (a chain: its first certificate) that the server must present:
	// the server's own --tls-cert file. The probe then trusts that certificate and no other, whatever names it
	// holds, so that a container checks its own server on 127.0.0.1 with neither a CA bundle nor a certificate
	// for that address.
	Certificate []byte
	// Timeout bounds the whole probe (default 5s).
	Timeout time.Duration
}

// maxHealthBody bounds the answer read: the health check's is a few dozen bytes.
const maxHealthBody = 64 << 10

// Probe asks a server's health check (GET url, its /v1/health) and returns the answer when the server says it
// is ok: the HEALTHCHECK of the server's image, which holds no other HTTP client. An URL that is not http or
// https, or a Certificate that holds none, is ErrInvalidArgument; a server that does not answer, answers
// anything but 200 with status "ok", or answers more than 64 KiB is ErrUnavailable; a server that presents
// another certificate than Certificate, or one the roots do not trust, is ErrTLS. No token is sent, and no redirect followed.
func Probe(ctx context.Context, rawURL string, opts ProbeOptions) (*Health, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: health check URL %q: want http:// or https://HOST[:PORT]/v1/health", errdefs.ErrInvalidArgument, rawURL)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(opts.Certificate) > 0 {
		var block *pem.Block
		for rest := opts.Certificate; ; {
			if block, rest = pem.Decode(rest); block == nil || block.Type == "CERTIFICATE" {
				break
			}
		}
		if block == nil {
			return nil, fmt.Errorf("%w: the pinned certificate holds no PEM CERTIFICATE block", errdefs.ErrInvalidArgument)
		}
		want := block.Bytes
		// The chain is not verified against roots: the one certificate accepted is the one given.
		tlsConf.InsecureSkipVerify = true
		tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return &errdefs.Classified{Sentinel: errdefs.ErrTLS, Err: errors.New("the server presents another certificate than the one given")}
			}
			return nil
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: tlsConf, Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: health check URL %q: %v", errdefs.ErrInvalidArgument, rawURL, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		switch {
		case errors.Is(err, errdefs.ErrTLS):
			return nil, err
		case errors.As(err, &verr):
			return nil, &errdefs.Classified{Sentinel: errdefs.ErrTLS, Err: err}
		}
		return nil, &errdefs.Classified{Sentinel: errdefs.ErrUnavailable, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", u.Redacted(), &errdefs.Classified{Sentinel: errdefs.ErrUnavailable, Err: err})
	}
	if len(body) > maxHealthBody {
		return nil, fmt.Errorf("%w: %s answers more than %d bytes: not a health check", errdefs.ErrUnavailable, u.Redacted(), maxHealthBody)
	}
	var h Health
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Status != "ok" {
		return nil, fmt.Errorf("%w: %s answers %s: %.200q", errdefs.ErrUnavailable, u.Redacted(), resp.Status, body)
	}
	return &h, nil
}
