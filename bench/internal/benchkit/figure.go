package benchkit

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Figure is a line chart of how a cost grows with the work, drawn from a run's own measurements and written
// beside its results as NAME-DATE-FIGURE.svg, so that the pictures in docs/benchmarks.md are made by the benchmark,
// never by hand.
type Figure struct {
	Name           string // the file's suffix: a short slug
	Title          string
	XLabel, YLabel string
	Series         []Series
}

// Series is one contender's line: Y measured at each X.
type Series struct {
	Name string
	X, Y []float64
}

// palette tells the lines apart (and reads on white and in grey).
var palette = []string{"#1b6ac9", "#d1495b", "#2e933c", "#8a5a00", "#6b3fa0", "#444444"}

const (
	figW, figH                   = 720, 400
	padL, padR, padT, padB       = 70, 20, 40, 55
	plotW, plotH                 = figW - padL - padR, figH - padT - padB
	legendRow                    = 18
	tickLen                      = 5
	markerR                      = 3.5
	fontSize, titleSize, tickMax = 12, 15, 6
)

// SVG draws the figure: axes from zero with round ticks, one line with markers per series, a legend.
func (f Figure) SVG() []byte {
	var xmax, ymax float64
	for _, s := range f.Series {
		for i := range min(len(s.X), len(s.Y)) {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				continue
			}
			xmax, ymax = math.Max(xmax, s.X[i]), math.Max(ymax, s.Y[i])
		}
	}
	xs, xtop := ticks(xmax)
	ys, ytop := ticks(ymax)
	px := func(x float64) float64 { return padL + x/xtop*plotW }
	py := func(y float64) float64 { return padT + plotH - y/ytop*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="%d" role="img">`+"\n", figW, figH, figW, figH, fontSize)
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(f.Title))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", figW, figH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d" font-weight="bold">%s</text>`+"\n", padL, padT-18, titleSize, esc(f.Title))
	for _, y := range ys {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>`+"\n", padL, padL+plotW, py(y), py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-tickLen-3, py(y), num(y))
	}
	for _, x := range xs {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#888888"/>`+"\n", px(x), px(x), padT+plotH, padT+plotH+tickLen)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), padT+plotH+tickLen+14, num(x))
	}
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" fill="none" stroke="#444444"/>`+"\n", padL, padT, padT+plotH, padL+plotW)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, figH-12, esc(f.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, esc(f.YLabel))
	for i, s := range f.Series {
		color := palette[i%len(palette)]
		var pts bytes.Buffer
		for j := range min(len(s.X), len(s.Y)) {
			if finite(s.X[j]) && finite(s.Y[j]) {
				fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.X[j]), py(s.Y[j]))
			}
		}
		fmt.Fprintf(&b, `<g stroke="%s" fill="%s"><title>%s</title>`+"\n", color, color, esc(s.Name))
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke-width="2"/>`+"\n", bytes.TrimSpace(pts.Bytes()))
		for j := range min(len(s.X), len(s.Y)) {
			if finite(s.X[j]) && finite(s.Y[j]) {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f"><title>%s: %s at %s</title></circle>`+"\n", px(s.X[j]), py(s.Y[j]), markerR, esc(s.Name), num(s.Y[j]), num(s.X[j]))
			}
		}
		b.WriteString("</g>\n")
	}
	// The legend sits in the plot's top left corner, on a white ground over the lines it may cross.
	longest := 0
	for _, s := range f.Series {
		longest = max(longest, len([]rune(s.Name)))
	}
	if len(f.Series) > 0 {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#ffffff" fill-opacity="0.9" stroke="#dddddd"/>`+"\n",
			padL+6, padT+1, 40+longest*7, len(f.Series)*legendRow+2)
	}
	for i, s := range f.Series {
		color := palette[i%len(palette)]
		ly := padT + 10 + i*legendRow
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", padL+12, padL+32, ly, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", padL+38, ly, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }

// ticks chooses round tick values from 0 up to at least top (1, 2 or 5 times a power of ten apart, at most
// tickMax of them), and returns them with the axis' end.
func ticks(top float64) ([]float64, float64) {
	if top <= 0 {
		top = 1
	}
	raw := top / (tickMax - 1)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := p
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	var out []float64
	for i := 0; ; i++ {
		v := float64(i) * step
		out = append(out, v)
		if v >= top {
			return out, v
		}
	}
}

// num writes a value as a label: ten significant digits at most, so that 3 × 0.2 reads 0.6.
func num(v float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 10, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// FigureFile is the file name a figure of a run's results gets: NAME-DATE-FIGURE.svg.
func FigureFile(name string, started time.Time, figure string) string {
	return name + "-" + started.Format("2006-01-02") + "-" + figure + ".svg"
}

// WriteFigures writes a run's figures to -out beside its results; with an empty -out it writes nothing.
func (f *Flags) WriteFigures(name string, started time.Time, figs []Figure) error {
	if f.Out == "" || len(figs) == 0 {
		return nil
	}
	if err := os.MkdirAll(f.Out, 0o755); err != nil {
		return err
	}
	for _, fig := range figs {
		p := filepath.Join(f.Out, FigureFile(name, started, fig.Name))
		if err := os.WriteFile(p, fig.SVG(), 0o644); err != nil {
			return err
		}
		Logf("wrote %s", p)
	}
	return nil
}

// Counts reads a -scale flag's value: whole numbers from lo to hi, separated by commas or spaces (empty: none).
func Counts(s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%q: want whole numbers from %d to %d, separated by commas", s, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}
