package main

import (
	"context"
	"fmt"
	"image/color"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// sample is one point of a run's progress: seconds since the first create, objects Ready and
// API calls answered so far (every status).
type sample struct {
	at    float64
	ready int
	calls int
}

// sampler records, every period, the objects Ready (from the tracker) and the calls the
// tenants' simulators answered, from start until stop is called.
type sampler struct {
	mu      sync.Mutex
	samples []sample
	stop    func()
	done    chan struct{}
}

// startSampler samples ready() and calls() every period from now; calls0 is subtracted so that
// the series starts at the count's origin.
func startSampler(ctx context.Context, period time.Duration, ready func() int, calls func() (int, error)) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{stop: cancel, done: make(chan struct{})}
	start := time.Now()
	c0, _ := calls()
	take := func() {
		c, err := calls()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.samples = append(s.samples, sample{at: time.Since(start).Seconds(), ready: ready(), calls: c - c0})
		s.mu.Unlock()
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		take()
		for {
			select {
			case <-t.C:
				take()
			case <-ctx.Done():
				take()
				return
			}
		}
	}()
	return s
}

// finish stops sampling (after one last sample) and returns the series.
func (s *sampler) finish() []sample {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sample{}, s.samples...)
}

// chart is what a plot shows beside the measured series: the objects, the rate limit (calls
// per second, summed over the tenants), and the lower bound (calls) with the time it takes at
// that limit.
type chart struct {
	title      string
	objects    int
	rateLimit  float64
	bound      int
	boundTime  float64 // seconds: the slowest tenant's bound at its limit
	boundLabel string
}

// writePlot draws (SVG, or PNG when path ends with .png) three panels, one above the other, into an SVG file: objects Ready over time
// (with the bound's time); API calls per second (with the rate limit); API calls so far (with
// the lower bound's line, the fewest calls made as fast as the limit allows).
func writePlot(path string, c chart, s []sample) error {
	if len(s) < 2 {
		return fmt.Errorf("%d samples: nothing to plot", len(s))
	}
	end := s[len(s)-1].at
	dashed := func(l *plotter.Line, clr color.Color) {
		l.Color = clr
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	grey, red, blue := color.RGBA{A: 255, R: 110, G: 110, B: 110}, color.RGBA{A: 255, R: 200, G: 30, B: 30}, color.RGBA{A: 255, R: 30, G: 80, B: 190}

	// Objects Ready.
	pr := plot.New()
	pr.Title.Text = c.title
	pr.Y.Label.Text = "objects Ready"
	pr.Y.Min, pr.Y.Max = 0, float64(c.objects)*1.05
	ready := make(plotter.XYs, len(s))
	for i, x := range s {
		ready[i] = plotter.XY{X: x.at, Y: float64(x.ready)}
	}
	lr, err := plotter.NewLine(ready)
	if err != nil {
		return err
	}
	lr.Color = blue
	bt, err := plotter.NewLine(plotter.XYs{{X: c.boundTime, Y: 0}, {X: c.boundTime, Y: float64(c.objects)}})
	if err != nil {
		return err
	}
	dashed(bt, grey)
	pr.Add(lr, bt, plotter.NewGrid())
	pr.Legend.Add("Ready (measured)", lr)
	pr.Legend.Add(fmt.Sprintf("lower bound's time at the limit (%.1f s)", c.boundTime), bt)
	pr.Legend.Top, pr.Legend.Left = false, false
	pr.Legend.YOffs = vg.Points(12)

	// Calls per second, each between two samples.
	pc := plot.New()
	pc.Y.Label.Text = "API calls / s"
	rate := make(plotter.XYs, 0, len(s))
	peak := c.rateLimit
	for i := 1; i < len(s); i++ {
		dt := s[i].at - s[i-1].at
		if dt <= 0 {
			continue
		}
		v := float64(s[i].calls-s[i-1].calls) / dt
		peak = max(peak, v)
		rate = append(rate, plotter.XY{X: s[i].at, Y: v})
	}
	pc.Y.Min, pc.Y.Max = 0, peak*1.1
	lc, err := plotter.NewLine(rate)
	if err != nil {
		return err
	}
	lc.Color = blue
	lim, err := plotter.NewLine(plotter.XYs{{X: 0, Y: c.rateLimit}, {X: end, Y: c.rateLimit}})
	if err != nil {
		return err
	}
	dashed(lim, red)
	pc.Add(lc, lim, plotter.NewGrid())
	pc.Legend.Add("calls/s (measured)", lc)
	pc.Legend.Add(fmt.Sprintf("rate limit (%g/s)", c.rateLimit), lim)
	pc.Legend.Top, pc.Legend.Left = false, false
	pc.Legend.YOffs = vg.Points(12)

	// Calls so far against the bound.
	pt := plot.New()
	pt.X.Label.Text = "seconds since the first create"
	pt.Y.Label.Text = "API calls so far"
	total := make(plotter.XYs, len(s))
	for i, x := range s {
		total[i] = plotter.XY{X: x.at, Y: float64(x.calls)}
	}
	pt.Y.Min, pt.Y.Max = 0, float64(max(c.bound, s[len(s)-1].calls))*1.05
	lt, err := plotter.NewLine(total)
	if err != nil {
		return err
	}
	lt.Color = blue
	bl, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: c.boundTime, Y: float64(c.bound)}, {X: max(end, c.boundTime), Y: float64(c.bound)}})
	if err != nil {
		return err
	}
	dashed(bl, grey)
	pt.Add(lt, bl, plotter.NewGrid())
	pt.Legend.Add("calls (measured)", lt)
	pt.Legend.Add(fmt.Sprintf("lower bound (%d calls%s) at the limit", c.bound, c.boundLabel), bl)
	pt.Legend.Top, pt.Legend.Left = false, false
	pt.Legend.YOffs = vg.Points(12)

	for _, p := range []*plot.Plot{pr, pc, pt} {
		p.X.Min, p.X.Max = 0, max(end, c.boundTime)*1.02
	}
	w, h := 7*vg.Inch, 8*vg.Inch
	var img interface {
		vg.CanvasSizer
		io.WriterTo
	} = vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(false))
	if strings.HasSuffix(path, ".png") {
		img = vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	}
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4, PadY: vg.Millimeter * 4}
	canvases := plot.Align([][]*plot.Plot{{pr}, {pc}, {pt}}, tiles, dc)
	pr.Draw(canvases[0][0])
	pc.Draw(canvases[1][0])
	pt.Draw(canvases[2][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := img.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// writePlots writes the plot to svg and, with -plot-png, to a PNG beside it too.
func writePlots(p params, svg string, c chart, s []sample) error {
	if err := writePlot(svg, c, s); err != nil {
		return err
	}
	if p.plotPNG {
		return writePlot(strings.TrimSuffix(svg, ".svg")+".png", c, s)
	}
	return nil
}
