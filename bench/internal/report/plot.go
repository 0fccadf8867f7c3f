package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// A Panel is one metric of a bar chart: a value per series, in the series' order; NaN (or a
// missing value) draws no bar.
type Panel struct {
	Title  string // for example "output MB/s (higher is better)"
	Values []float64
}

// Chart layout, in pixels.
const (
	panelWidth  = 230
	panelHeight = 260
	barsTop     = 40 // room for the title
	barsBottom  = 30 // room under the bars
	legendRow   = 18
	margin      = 12
)

// seriesColors are told apart also in grey: dark to light.
var seriesColors = []color.RGBA{
	{0x1f, 0x4e, 0x9c, 0xff}, // blue
	{0xc0, 0x39, 0x2b, 0xff}, // red
	{0x27, 0x8f, 0x4a, 0xff}, // green
	{0x9e, 0x9e, 0x9e, 0xff}, // grey
	{0x8e, 0x44, 0xad, 0xff}, // purple
	{0xe6, 0x7e, 0x22, 0xff}, // orange
}

// BarChart draws panels side by side, one bar per series in each, with each bar's value above
// it and a legend of the series below, and writes it to w as a PNG.
func BarChart(w io.Writer, series []string, panels []Panel) error {
	return BarGrid(w, series, panels, len(panels))
}

// BarGrid is BarChart with the panels in rows of columns panels each, left to right, then top to
// bottom: a grid of a metric per row and a condition per column, say.
func BarGrid(w io.Writer, series []string, panels []Panel, columns int) error {
	if len(series) > len(seriesColors) {
		return fmt.Errorf("report: %d series, at most %d", len(series), len(seriesColors))
	}
	columns = max(1, min(columns, len(panels)))
	rows := (len(panels) + columns - 1) / columns
	width := margin*2 + panelWidth*columns
	height := margin*2 + panelHeight*max(1, rows) + legendRow*len(series)
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	ink := image.NewUniform(color.Black)

	for i, p := range panels {
		x0, y0 := margin+(i%columns)*panelWidth, margin+(i/columns)*panelHeight
		text(img, ink, x0+6, y0+14, p.Title)
		top, bottom := y0+barsTop, y0+panelHeight-barsBottom
		maxV := 0.0
		for _, v := range p.Values {
			if !math.IsNaN(v) {
				maxV = math.Max(maxV, v)
			}
		}
		drawRect(img, ink, x0+6, bottom, x0+panelWidth-12, bottom+1) // the axis
		slot := (panelWidth - 24) / max(1, len(series))
		for j := range series {
			if j >= len(p.Values) || math.IsNaN(p.Values[j]) || maxV <= 0 {
				continue
			}
			v := p.Values[j]
			h := int(float64(bottom-top-14) * v / maxV)
			bx := x0 + 12 + j*slot
			drawRect(img, image.NewUniform(seriesColors[j]), bx+4, bottom-h, bx+slot-4, bottom)
			text(img, ink, bx+2, bottom-h-4, short(v))
		}
	}
	for j, name := range series {
		y := margin + panelHeight*max(1, rows) + j*legendRow
		drawRect(img, image.NewUniform(seriesColors[j]), margin+6, y, margin+20, y+12)
		text(img, ink, margin+28, y+11, name)
	}
	return png.Encode(w, img)
}

// short formats v in at most about five characters, to fit above a bar.
func short(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func drawRect(img draw.Image, c image.Image, x0, y0, x1, y1 int) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), c, image.Point{}, draw.Src)
}

// text draws s with its baseline at y.
func text(img draw.Image, c image.Image, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: c, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
