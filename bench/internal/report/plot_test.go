package report

import (
	"bytes"
	"image/png"
	"math"
	"testing"
)

func TestBarChart(t *testing.T) {
	var b bytes.Buffer
	series := []string{"a", "b", "c"}
	panels := []Panel{
		{Title: "one", Values: []float64{1, 2, 3}},
		{Title: "two", Values: []float64{0.5, math.NaN(), 150}},
	}
	if err := BarChart(&b, series, panels); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got, want := img.Bounds().Dx(), 2*margin+2*panelWidth; got != want {
		t.Errorf("width %d, want %d", got, want)
	}
	// The tallest bar of the first panel (series c) reaches near the top of the bar area, in
	// series c's color.
	x := margin + 12 + 2*((panelWidth-24)/3) + 10
	y := margin + barsTop + 16
	r, g, bl, _ := img.At(x, y).RGBA()
	c := seriesColors[2]
	if uint8(r>>8) != c.R || uint8(g>>8) != c.G || uint8(bl>>8) != c.B {
		t.Errorf("pixel (%d,%d) = %d,%d,%d; want series c's bar", x, y, r>>8, g>>8, bl>>8)
	}
	if err := BarChart(&b, make([]string, 7), panels); err == nil {
		t.Error("7 series accepted; there are colors for 6")
	}

	// In a grid of two columns, the third panel starts a second row.
	b.Reset()
	if err := BarGrid(&b, series, append(panels, Panel{Title: "three", Values: []float64{1, 1, 1}}), 2); err != nil {
		t.Fatal(err)
	}
	img, err = png.Decode(&b)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 2*margin+2*panelWidth || h != 2*margin+2*panelHeight+3*legendRow {
		t.Errorf("grid of 3 panels in 2 columns is %dx%d", w, h)
	}
}
