package state_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/server/state"
)

// The scan history: one scan per job, recorded once; looked up by image or digest, newest first, bounded; one of
// no job is not recorded; pruning a job deletes its scan with it.
func TestScanHistory(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := open(t, where)
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		ids := queue(t, st, 3, now)
		for i, id := range ids {
			job, _, err := st.ClaimJob(ctx, "r", []string{"scan"}, now, now.Add(time.Minute))
			if err != nil || job.ID != id {
				t.Fatalf("ClaimJob = %+v, %v", job, err)
			}
			job.State, job.Finished = state.JobSucceeded, now.Add(time.Duration(i)*time.Second)
			if _, err := st.FinishJob(ctx, job, "r"); err != nil {
				t.Fatal(err)
			}
			digest := "sha256:" + string(rune('a'+i))
			sc := &state.Scan{ID: id, JobKind: "scan", ImageName: "app:1", Image: "index.docker.io/library/app:1", ImageDigest: digest,
				ScanTimestamp: now.Add(time.Duration(i) * time.Second), ScanType: "full", HighCount: i, PolicyPassed: i == 0, PolicyVerdict: "allowed"}
			if err := st.RecordScan(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		// Recorded once: a second record of a job changes nothing.
		if err := st.RecordScan(ctx, &state.Scan{ID: ids[0], JobKind: "scan", Image: "other", ScanTimestamp: now}); err != nil {
			t.Fatal(err)
		}
		// A scan of no job is not kept.
		if err := st.RecordScan(ctx, &state.Scan{ID: "nosuch", JobKind: "scan", Image: "index.docker.io/library/app:1", ScanTimestamp: now}); err != nil {
			t.Fatal(err)
		}
		list, err := st.Scans(ctx, state.ScanQuery{Image: "index.docker.io/library/app:1"})
		if err != nil || len(list) != 3 || list[0].ID != ids[2] || list[2].ID != ids[0] || list[2].HighCount != 0 || !list[2].PolicyPassed || list[0].PolicyPassed {
			t.Fatalf("Scans(image) = %+v, %v; want the three, newest first", list, err)
		}
		if list[0].ScanTimestamp != now.Add(2*time.Second) || list[0].ImageDigest != "sha256:c" || list[0].PolicyVerdict != "allowed" {
			t.Errorf("the newest scan = %+v", list[0])
		}
		if list, err := st.Scans(ctx, state.ScanQuery{Digest: "sha256:b"}); err != nil || len(list) != 1 || list[0].ID != ids[1] {
			t.Errorf("Scans(digest) = %+v, %v", list, err)
		}
		if list, err := st.Scans(ctx, state.ScanQuery{Limit: 2}); err != nil || len(list) != 2 || list[0].ID != ids[2] {
			t.Errorf("Scans(limit 2) = %+v, %v", list, err)
		}
		if list, err := st.Scans(ctx, state.ScanQuery{Image: "other"}); err != nil || len(list) != 0 {
			t.Errorf("Scans(other) = %+v, %v; want none", list, err)
		}
		if sc, err := st.GetScan(ctx, ids[1]); err != nil || sc.HighCount != 1 || sc.JobKind != "scan" {
			t.Errorf("GetScan = %+v, %v", sc, err)
		}
		// Pruning the two oldest jobs takes their scans.
		if n, err := st.PruneJobs(ctx, 1, now.Add(-time.Hour)); err != nil || n != 2 {
			t.Fatalf("PruneJobs = %d, %v", n, err)
		}
		if _, err := st.GetScan(ctx, ids[0]); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("GetScan of a pruned job's scan = %v, want ErrNotFound", err)
		}
		if list, err := st.Scans(ctx, state.ScanQuery{}); err != nil || len(list) != 1 || list[0].ID != ids[2] {
			t.Errorf("after pruning, Scans = %+v, %v; want the newest only", list, err)
		}
	})
}

// The images of the history: each once, with its latest scan (the newest; of two at the same time, the first in
// the history's order) and how many scans it has; the most recently scanned first, bounded.
func TestScannedImages(t *testing.T) {
	onBoth(t, func(t *testing.T, where string) {
		ctx := context.Background()
		st := open(t, where)
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		ids := queue(t, st, 5, now)
		for i, c := range []struct {
			image string
			at    time.Duration
			high  int
		}{{"reg/a:1", 0, 5}, {"reg/b:1", time.Second, 1}, {"reg/a:1", 2 * time.Second, 3}, {"reg/c:1", 3 * time.Second, 0}, {"reg/c:1", 3 * time.Second, 7}} {
			job, _, err := st.ClaimJob(ctx, "r", []string{"scan"}, now, now.Add(time.Minute))
			if err != nil || job.ID != ids[i] {
				t.Fatalf("ClaimJob = %+v, %v", job, err)
			}
			job.State, job.Finished = state.JobSucceeded, now
			if _, err := st.FinishJob(ctx, job, "r"); err != nil {
				t.Fatal(err)
			}
			if err := st.RecordScan(ctx, &state.Scan{ID: job.ID, JobKind: "scan", ImageName: c.image, Image: c.image,
				ScanTimestamp: now.Add(c.at), ScanType: "full", HighCount: c.high}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.ScannedImages(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			image, latest string
			scans, high   int
		}
		var rows []row
		for _, im := range got {
			rows = append(rows, row{im.Image, im.Latest.ID, im.Scans, im.Latest.HighCount})
		}
		want := []row{{"reg/c:1", ids[3], 2, 0}, {"reg/a:1", ids[2], 2, 3}, {"reg/b:1", ids[1], 1, 1}}
		if !slices.Equal(rows, want) {
			t.Errorf("ScannedImages = %+v, want %+v", rows, want)
		}
		if got, err := st.ScannedImages(ctx, 1); err != nil || len(got) != 1 || got[0].Image != "reg/c:1" {
			t.Errorf("ScannedImages(1) = %+v, %v", got, err)
		}
	})
}
