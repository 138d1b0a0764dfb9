package daemon

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/linnet-edge/linnet/client"
	"github.com/linnet-edge/linnet/daemon/serving"
	"github.com/linnet-edge/linnet/model"
)

// messyRow is one row of a real export: a timestamp, a device name, a
// category, two sensors; about 5% of the category and sensor cells are
// missing.
type messyRow struct {
	ts, device, room string
	temp, hum        string  // as written in the CSV
	has              [3]bool // room, temp, hum present
	y                float64
}

func messyRows(n int, seed uint64) []messyRow {
	r := rand.New(rand.NewPCG(seed, 13))
	rooms := []string{"bath", "kitchen", "living", "bed"}
	effect := map[string]float64{"bath": 4, "kitchen": -2, "living": 1, "bed": 0}
	rows := make([]messyRow, n)
	for i := range rows {
		row := &rows[i]
		row.ts = fmt.Sprintf("2026-11-%02dT%02d:%02d:00Z", 1+i/1440%28, i/60%24, i%60)
		row.device = fmt.Sprintf("dev-%d", r.IntN(40))
		row.room = rooms[r.IntN(len(rooms))]
		temp := math.Round((20+5*r.NormFloat64())*100) / 100
		hum := math.Round((50+12*r.NormFloat64())*10) / 10
		row.temp, row.hum = strconv.FormatFloat(temp, 'g', -1, 64), strconv.FormatFloat(hum, 'g', -1, 64)
		row.y = math.Round((10+2*temp-0.5*hum+effect[row.room]+r.NormFloat64())*1000) / 1000
		for k := range row.has {
			row.has[k] = r.Float64() >= 0.05
		}
	}
	return rows
}

// writeMessy writes rows with ';' as the delimiter and missing cells
// spelled "", NA or null.
func writeMessy(t *testing.T, path string, rows []messyRow) {
	t.Helper()
	var b strings.Builder
	b.WriteString("ts;device;room;temp;hum;y\n")
	spell := []string{"", "NA", "null"}
	for i, row := range rows {
		cell := func(k int, s string) string {
			if row.has[k] {
				return s
			}
			return spell[i%len(spell)]
		}
		fmt.Fprintf(&b, "%s;%s;%s;%s;%s;%g\n", row.ts, row.device, cell(0, row.room), cell(1, row.temp), cell(2, row.hum), row.y)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// messyReading is row i as a device sends it: the category as a string,
// a missing value as null (even rows) or an absent name (odd rows); every
// fourth reading positional, missing as null.
func messyReading(i int, row messyRow) ([]byte, []string) {
	var missing []string
	vals := []string{strconv.Quote(row.room), row.temp, row.hum}
	for k, name := range []string{"room", "temp", "hum"} {
		if !row.has[k] {
			vals[k] = "null"
			missing = append(missing, name)
		}
	}
	if i%4 == 3 {
		return []byte(fmt.Sprintf(`{"id":%d,"features":[%s]}`, i, strings.Join(vals, ","))), missing
	}
	var fs []string
	for k, name := range []string{"room", "temp", "hum"} {
		if row.has[k] || i%2 == 0 {
			fs = append(fs, fmt.Sprintf("%q:%s", name, vals[k]))
		}
	}
	return []byte(fmt.Sprintf(`{"id":%d,"ts":%q,"features":{%s}}`, i, row.ts, strings.Join(fs, ","))), missing
}

// Acceptance (issue 13): a ';' CSV with a timestamp, a device text column,
// a category and 5% missing cells trains with --ignore ts,device; 1,000
// readings with the same gaps (null, absent names, category strings) sent
// through mosquitto get the predictions of linnet predict on the same rows,
// and each names the inputs it imputed.
func TestMessyReadingsMatchPredict(t *testing.T) {
	bin := linnetBinary(t)
	m := startMosquitto(t, "")
	dir := t.TempDir()
	trainPath, testPath, out := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv"), filepath.Join(dir, "m.lnm")
	rows := messyRows(1000, 2)
	writeMessy(t, trainPath, messyRows(3000, 1))
	writeMessy(t, testPath, rows)
	if b, err := exec.Command(bin, "train", "--data", trainPath, "--target", "y", "--ignore", "ts,device", "--version", "5", "--out", out).CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, b)
	}
	pb, err := exec.Command(bin, "predict", "--model", out, "--data", testPath).Output()
	if err != nil {
		t.Fatalf("predict: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(pb)), "\n")
	if len(lines) != len(rows)+1 {
		t.Fatalf("predict printed %d lines", len(lines))
	}
	mod, _, err := model.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mod.Inputs(), []string{"room", "temp", "hum"}) {
		t.Fatalf("model inputs %v", mod.Inputs())
	}

	d := startDaemon(t, testConfig(t, m.url()), serving.NewScorer(mod), serving.Meta{Target: "y"})
	c := testClient(t, m.url(), "messy", true)
	col := collect(t, c, "linnet/+/prediction")
	errs := collect(t, c, "linnet/+/errors")
	wantImputed := make([][]string, len(rows))
	for i, row := range rows {
		payload, missing := messyReading(i, row)
		wantImputed[i] = missing
		publish(t, c, "linnet/dev-1/features", payload)
	}
	publish(t, c, "linnet/dev-1/features", []byte(`{"id":"unseen","features":{"room":"garage","temp":20,"hum":50}}`))
	col.waitIDs(t, len(rows)+1)
	errs.mu.Lock()
	if len(errs.all) > 0 {
		t.Errorf("rejected: %v", errs.all[0])
	}
	errs.mu.Unlock()

	col.mu.Lock()
	imputed := 0
	for i := range rows {
		want, err := strconv.ParseFloat(lines[i+1], 64)
		if err != nil {
			t.Fatal(err)
		}
		ps := col.byID[strconv.Itoa(i)]
		if len(ps) != 1 {
			t.Fatalf("reading %d: %d predictions", i, len(ps))
		}
		got := ps[0]["prediction"].(float64)
		if math.Abs(got-want) > 1e-5*math.Max(math.Abs(want), 1e-3) {
			t.Errorf("reading %d: daemon %v, linnet predict %v", i, got, want)
		}
		var names []string
		if v, ok := ps[0]["imputed"].([]any); ok {
			for _, n := range v {
				names = append(names, n.(string))
			}
		}
		if !slices.Equal(names, wantImputed[i]) {
			t.Errorf("reading %d: imputed %v, want %v", i, names, wantImputed[i])
		}
		imputed += len(names)
	}
	if imputed < 100 || imputed > 200 {
		t.Errorf("%d of 3000 values imputed, want about 5%%", imputed)
	}
	if got := testutil.ToFloat64(d.s.m.imputed); got != float64(imputed) {
		t.Errorf("linnet_imputed_total %v, want %d", got, imputed)
	}
	if got := testutil.ToFloat64(d.s.m.unseen); got != 1 {
		t.Errorf("linnet_unseen_categories_total %v, want 1", got)
	}
	if p := col.byID["unseen"]; len(p) != 1 || p[0]["imputed"] != nil {
		t.Errorf("unseen category: %v", p)
	}
	col.mu.Unlock()

	// linnet send replays the same file: text as strings, gaps as null.
	for _, positional := range []bool{false, true} {
		sc := client.DefaultSendConfig()
		sc.MQTT.Broker = m.url()
		sc.Data, sc.Target, sc.Ignore, sc.Positional = testPath, "y", []string{"ts", "device"}, positional
		sc.Out = filepath.Join(dir, fmt.Sprintf("answers-%v.csv", positional))
		if positional {
			sc.Batch, sc.Rate = 10, 5000
		}
		r, err := client.Send(context.Background(), sc)
		if err != nil || r.Predictions != len(rows) || r.Rejected != 0 {
			t.Fatalf("send (positional %v): %v %+v", positional, err, r)
		}
		b, err := os.ReadFile(sc.Out)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
			f := strings.Split(line, ",")
			i, _ := strconv.Atoi(f[0])
			got, err1 := strconv.ParseFloat(f[1], 64)
			want, err2 := strconv.ParseFloat(lines[i+1], 64)
			if err1 != nil || err2 != nil || math.Abs(got-want) > 1e-5*math.Max(math.Abs(want), 1e-3) {
				t.Errorf("send row %d: daemon %q, linnet predict %q", i, f[1], lines[i+1])
			}
		}
	}
}
