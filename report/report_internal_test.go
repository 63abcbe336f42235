package report

import "testing"

func TestRefByDigest(t *testing.T) {
	const d = "sha256:0123"
	for in, want := range map[string]string{
		"docker://127.0.0.1:5000/team/app:1":   "127.0.0.1:5000/team/app@" + d,
		"http://127.0.0.1:5000/app:1":          "http://127.0.0.1:5000/app@" + d,
		"registry.example.com/app@sha256:aaaa": "registry.example.com/app@" + d,
		"registry.example.com:443/app":         "registry.example.com:443/app@" + d,
	} {
		if got := refByDigest(in, d); got != want {
			t.Errorf("refByDigest(%q) = %q, want %q", in, got, want)
		}
	}
}
