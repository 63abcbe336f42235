package benchkit

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestFigureSVG(t *testing.T) {
	f := Figure{
		Name: "lifecycle", Title: "Cycles <at scale> & more", XLabel: "containers", YLabel: "seconds",
		Series: []Series{
			{Name: "Myrmex", X: []float64{10, 50, 200}, Y: []float64{3.1, 15.2, 61.7}},
			{Name: "docker <CLI>", X: []float64{10, 50, 200}, Y: []float64{4, 19, 77.5}},
		},
	}
	svg := f.SVG()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	polylines, circles := 0, 0
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v\n%s", err, svg)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "polyline":
				polylines++
				for _, a := range e.Attr {
					if a.Name.Local != "points" {
						continue
					}
					pts := strings.Fields(a.Value)
					if len(pts) != 3 {
						t.Errorf("polyline has %d points, want 3: %q", len(pts), a.Value)
					}
					for _, p := range pts {
						x, y, _ := strings.Cut(p, ",")
						fx, _ := strconv.ParseFloat(x, 64)
						fy, _ := strconv.ParseFloat(y, 64)
						if fx < padL || fx > padL+plotW || fy < padT || fy > padT+plotH {
							t.Errorf("point %s outside the plot area", p)
						}
					}
				}
			case "circle":
				circles++
			}
		case xml.CharData:
			texts = append(texts, string(e))
		}
	}
	if polylines != 2 || circles != 6 {
		t.Errorf("%d lines and %d markers, want 2 and 6", polylines, circles)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"Cycles <at scale> & more", "docker <CLI>", "containers", "seconds", "80", "200"} {
		if !strings.Contains(all, want) {
			t.Errorf("the figure's text lacks %q: %s", want, all)
		}
	}
}

func TestTicks(t *testing.T) {
	for _, tt := range []struct {
		top  float64
		want string
	}{
		{77.5, "0 20 40 60 80"},
		{200, "0 50 100 150 200"},
		{1, "0 0.2 0.4 0.6 0.8 1"},
		{0, "0 0.2 0.4 0.6 0.8 1"},
		{1234, "0 250 500 750 1000 1250"},
	} {
		ts, end := ticks(tt.top)
		var s []string
		for _, v := range ts {
			s = append(s, num(v))
		}
		if got := strings.Join(s, " "); got != tt.want || end < tt.top {
			t.Errorf("ticks(%v) = %s (end %v), want %s", tt.top, got, end, tt.want)
		}
	}
}

func TestCounts(t *testing.T) {
	if got, err := Counts("10, 50,200", 1, 999); err != nil || len(got) != 3 || got[0] != 10 || got[2] != 200 {
		t.Errorf("Counts = %v, %v", got, err)
	}
	if got, err := Counts("", 1, 999); err != nil || got != nil {
		t.Errorf("Counts(empty) = %v, %v; want none", got, err)
	}
	for _, bad := range []string{"0", "1000", "x", "5;6", "-3"} {
		if _, err := Counts(bad, 1, 999); err == nil {
			t.Errorf("Counts(%q) accepted", bad)
		}
	}
}
