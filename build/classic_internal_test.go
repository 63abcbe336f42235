package build

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The classic builder's stream is read a bounded message at a time: the real engine cuts a step's output into
// pipe-sized pieces, so only a stream that is not the engine's can hold a message this long (the one fault here
// the real engine cannot produce; the real builder's streams are read in classic_test.go).
func TestReadClassicBoundsAMessage(t *testing.T) {
	r := &request{}
	ok := `{"stream":"Step 1/1 : FROM scratch\n"}` + "\r\n" + `{"aux":{"ID":"sha256:abc"}}` + "\r\n"
	res, err := r.readClassic(context.Background(), strings.NewReader(ok), time.Now())
	if err != nil || res.ImageID != "sha256:abc" || res.Steps != 1 {
		t.Fatalf("readClassic(a step and an image) = %+v, %v; want the image and one step", res, err)
	}
	long := `{"stream":"Step 1/1 : FROM scratch\n"}` + "\r\n" + `{"stream":"` + strings.Repeat("x", 2<<20) + `"}` + "\r\n" + `{"aux":{"ID":"sha256:abc"}}` + "\r\n"
	if _, err := r.readClassic(context.Background(), strings.NewReader(long), time.Now()); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("readClassic(a 2 MiB message) = %v, want it refused for its length", err)
	}
	if _, err := r.readClassic(context.Background(), strings.NewReader(`{"stream": nope}`+"\n"), time.Now()); err == nil {
		t.Errorf("readClassic(not JSON) = nil, want an error")
	}
}
