package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/compliance"
)

// chromium finds a headless-capable Chromium (Debian's package `chromium`).
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// checkHTMLInChromium renders an HTML report in headless Chromium: the DOM
// the browser built must hold the controls table with a row per control,
// and the screenshot must be a full-size PNG with something drawn on it.
func checkHTMLInChromium(t *testing.T, page string, controls []compliance.Control) {
	t.Helper()
	exe := chromium()
	if exe == "" {
		t.Skip("chromium is not installed (Debian: apt-get install -y chromium); the HTML report was not rendered in a browser")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(page), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile")}, args...)
		cmd := exec.CommandContext(ctx, exe, append(args, "file://"+file)...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", exe, strings.Join(args, " "), err, errOut.String())
		}
		return out.Bytes()
	}

	dom := string(run("--dump-dom"))
	if !strings.Contains(dom, `<table id="controls" class="controls">`) || !strings.Contains(dom, "<tbody>") {
		t.Fatalf("the DOM Chromium built has no controls table:\n%.2000s", dom)
	}
	if n := strings.Count(dom, "<tr data-control="); n != len(controls) {
		t.Errorf("the controls table has %d rows, want %d", n, len(controls))
	}
	for _, c := range controls {
		if !strings.Contains(dom, `<tr data-control="`+c.ID+`"`) {
			t.Errorf("no row for control %s", c.ID)
		}
	}

	shot := filepath.Join(dir, "report.png")
	run("--screenshot="+shot, "--window-size=1200,1600", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 1600 {
		t.Errorf("screenshot is %dx%d, want 1200x1600", b.Dx(), b.Dy())
	}
	colors, inked := inkOf(img)
	if colors < 8 || inked < 0.01 {
		t.Errorf("the screenshot looks blank: %d colours, %.2f%% of pixels not white", colors, 100*inked)
	}
	t.Logf("rendered: %d colours, %.1f%% of pixels inked", colors, 100*inked)
}

// inkOf counts the distinct colours of an image and the share of pixels
// that are not white.
func inkOf(img image.Image) (int, float64) {
	b := img.Bounds()
	seen := map[[3]uint32]bool{}
	inked := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				inked++
			}
		}
	}
	return len(seen), float64(inked) / float64(b.Dx()*b.Dy())
}
