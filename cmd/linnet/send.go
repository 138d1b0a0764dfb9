package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/client"
)

func init() { commands = append(commands, newSendCmd) }

func newSendCmd(e *env) *cobra.Command {
	cfg := client.DefaultSendConfig()
	var asJSON bool
	c := &cobra.Command{
		Use:   "send --broker URL --data F.csv [--rate N] [--json]",
		Short: "replay a CSV as readings and report predictions, throughput and latency",
		Long: `send publishes each row of a CSV file (with a header) as a reading with its
row index as id, collects the predictions (and rejections) by id, and reports
the count, throughput and latency percentiles. It is the demo client and the
load generator: --rate paces the readings, --batch groups them, --window
bounds the readings sent and not yet answered.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := client.Send(cmd.Context(), cfg)
			if r != nil {
				if asJSON {
					if werr := writeJSON(e.stdout, r); werr != nil {
						return werr
					}
				} else {
					fmt.Fprintf(e.stdout, "sent %d readings in %d messages: %d predictions, %d rejected, %d missing, %d duplicates\n",
						r.Sent, r.Messages, r.Predictions, r.Rejected, r.Missing, r.Duplicates)
					if len(r.Reasons) > 0 {
						fmt.Fprintf(e.stdout, "rejected: %s\n", reasonCounts(r.Reasons))
					}
					fmt.Fprintf(e.stdout, "%.2f s: %.0f readings/s sent, %.0f predictions/s\n", r.Seconds, r.SentPerSec, r.PredPerSec)
					fmt.Fprintf(e.stdout, "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n",
						r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
				}
			}
			if err == nil && (r.Missing > 0 || r.Rejected > 0) {
				// The exit status tells the truth: every reading answered
				// with a prediction, or not.
				err = fmt.Errorf("%d of %d readings rejected (%s), %d unanswered", r.Rejected, r.Sent, reasonCounts(r.Reasons), r.Missing)
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.MQTT.Broker, "broker", cfg.MQTT.Broker, "broker URL (the default is the embedded broker's)")
	f.StringVar(&cfg.Data, "data", "", "CSV file with a header line")
	f.Float64Var(&cfg.Rate, "rate", 0, "readings per second (0: as fast as the window allows)")
	f.IntVar(&cfg.Batch, "batch", 1, "readings per message (a {\"batch\":[...]} payload when more than 1)")
	f.IntVar(&cfg.Window, "window", cfg.Window, "readings sent and not yet answered, at most")
	f.StringVar(&cfg.Target, "target", "", "column to leave out of the features")
	f.BoolVar(&cfg.Learn, "learn", false, "send the --target column as the label (online learning)")
	f.StringVar(&cfg.Device, "device", cfg.Device, "device id in the topic")
	f.IntVar(&cfg.Devices, "devices", 0, "spread the messages over this many devices in turn (DEVICE-0, DEVICE-1, ...)")
	f.BoolVar(&cfg.Positional, "positional", false, "send features as an array in file order (the model's order) instead of by name")
	f.StringSliceVar(&cfg.Ignore, "ignore", nil, "columns not to send (e.g. ts,device); text columns are sent as strings, missing cells as null")
	f.IntVar(&cfg.QoS, "qos", cfg.QoS, "MQTT QoS for readings and predictions")
	f.DurationVar(&cfg.Wait, "wait", cfg.Wait, "how long to wait for outstanding answers")
	f.StringVar(&cfg.MQTT.Username, "username", "", "MQTT user name")
	f.StringVar(&cfg.MQTT.PasswordFile, "password-file", "", "file holding the MQTT password")
	f.StringVar(&cfg.MQTT.CAFile, "ca", "", "CA certificate (PEM) for ssl:// brokers")
	f.StringVar(&cfg.MQTT.CertFile, "cert", "", "client certificate (PEM)")
	f.StringVar(&cfg.MQTT.KeyFile, "key", "", "client key (PEM)")
	f.StringVar(&cfg.Out, "out", "", "write every answer (id, prediction, model_version, or the rejection reason) to this file: CSV if it ends in .csv, else JSON lines")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	_ = c.MarkFlagRequired("data")
	return c
}

// reasonCounts prints rejection counts by reason, most frequent first.
func reasonCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
