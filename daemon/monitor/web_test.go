package monitor

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linnet-edge/linnet/daemon/monitor/browsertest"
)

// browser is browsertest.Start.
var browser = browsertest.Start

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
