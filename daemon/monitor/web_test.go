package monitor

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts Debian's chromium headless on an empty profile, or skips
// the test when it is not installed (scripts/install-test-deps.sh installs
// it). problems returns the console errors, uncaught exceptions and
// error entries of the browser log seen so far.
func browser(t *testing.T) (ctx context.Context, problems func() []string) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium, or scripts/install-test-deps.sh): skipping the browser test")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}

	var mu sync.Mutex
	var seen []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				seen = append(seen, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestWebPageInBrowser(t *testing.T) {
	ctx, problems := browser(t)
	src := newFakeSource(t)
	srv := httptest.NewServer(NewHandler(src))
	defer srv.Close()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`.model[data-model="houses"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.model[data-model="door"]`)),
	); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.model').length`)); err != nil || n != 2 {
		t.Errorf("%d model cards (%v), want 2", n, err)
	}
	houses, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.model[data-model="houses"]`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"42", "learning", "950", "12.25", "area_m2"} {
		if !strings.Contains(houses, want) {
			t.Errorf("the houses card lacks %q: %q", want, houses)
		}
	}
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.model[data-model="houses"] svg polyline').length`))
	if err != nil || lines != 3 {
		t.Errorf("%d chart lines for houses (%v), want loss, drift and throughput", lines, err)
	}
	if ota, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#ota`))); err != nil || !strings.Contains(ota, "not newer") {
		t.Errorf("OTA table %q (%v)", ota, err)
	}

	// An alert added now shows within 5 s.
	src.add(Alert{Model: "houses", Kind: KindFeature, Feature: "rooms", Score: 1.25, Threshold: 0.5, Since: time.Now(), Active: true})
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	row := chromedp.CSS(`#alerts tr.alert.active[data-model="houses"]`)
	if err := chromedp.Do(wctx, chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("the alert did not appear within 5 s: %v", err)
	}
	if text, err := chromedp.Run(ctx, chromedp.Text(row)); err != nil || !strings.Contains(text, "rooms") || !strings.Contains(text, "firing") {
		t.Errorf("alert row %q (%v)", text, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("browser errors:\n%s", strings.Join(p, "\n"))
	}
}
