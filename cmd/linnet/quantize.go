package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newQuantizeCmd) }

type quantizeReport struct {
	Scheme      model.Scheme `json:"scheme"`
	Bytes       int          `json:"bytes"`
	SourceBytes int          `json:"source_bytes"`
	Version     int64        `json:"version"`
	Parent      int64        `json:"parent"`
	// With --data: the source's and the copy's metrics on the same rows.
	SourceMetrics map[string]float64 `json:"source_metrics,omitempty"`
	Metrics       map[string]float64 `json:"metrics,omitempty"`
}

func newQuantizeCmd(e *env) *cobra.Command {
	var (
		in, out, scheme string
		data, target    string
		version         int64
		asJSON          bool
	)
	c := &cobra.Command{
		Use:   "quantize --model M.lnm --scheme q8|q4 --out M2.lnm",
		Short: "store a model's weights as q8, q4 or f32 in a new file",
		Long: "quantize writes a copy of a model with its weights quantized block-wise.\n" +
			"The copy gets a new version (--version, by default the current Unix time,\n" +
			"and always above the source's) with the source as its parent; it is unsigned.\n" +
			"With --data, both models are scored on the CSV file so the cost of quantization shows.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := model.ParseScheme(scheme)
			if err != nil {
				return fmt.Errorf("--scheme: %w", err)
			}
			m, src, err := model.ReadFile(in)
			if err != nil {
				return err
			}
			q, err := m.Quantize(s)
			if err != nil {
				return err
			}
			q.Parent = m.Version
			q.Version = version
			if version == 0 {
				q.Version = max(model.DefaultVersion(), m.Version+1)
			} else if version <= m.Version {
				return fmt.Errorf("--version %d is not newer than the source's %d", version, m.Version)
			}
			q.Created = time.Now().UTC().Truncate(time.Second)
			b, err := q.MarshalBinary()
			if err != nil {
				return err
			}
			if err := model.WriteFile(out, b); err != nil {
				return fmt.Errorf("write %q: %w", out, err)
			}
			r := quantizeReport{Scheme: s, Bytes: len(b), SourceBytes: len(src), Version: q.Version, Parent: q.Parent}
			if data != "" {
				// Score the copy as it was written, decoded like the daemon would.
				written, err := model.Decode(b)
				if err != nil {
					return err
				}
				for _, x := range []struct {
					m   *model.Model
					dst *map[string]float64
				}{{m, &r.SourceMetrics}, {written, &r.Metrics}} {
					met, err := evaluateFile(cmd.Context(), x.m, data, target, false)
					if err != nil {
						return err
					}
					*x.dst = met.Map(m.Loss)
				}
			}
			if asJSON {
				return writeJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "%s: %s, %d bytes (source %s, %d bytes), version %d\n",
				out, s, len(b), m.Scheme, len(src), q.Version)
			if data != "" {
				fmt.Fprintf(e.stdout, "source %s  %s\n", m.Scheme, formatMetrics(r.SourceMetrics))
				fmt.Fprintf(e.stdout, "copy   %s  %s\n", s, formatMetrics(r.Metrics))
			}
			if model.IsSigned(src) {
				fmt.Fprintf(e.stderr, "note: %s is unsigned; sign it with linnet sign before pushing it\n", out)
			}
			return nil
		},
	}
	c.Flags().StringVar(&in, "model", "", "source model file (required)")
	c.Flags().StringVar(&scheme, "scheme", "q8", "f32, q8 or q4")
	c.Flags().StringVar(&out, "out", "", "output model file (required)")
	c.Flags().Int64Var(&version, "version", 0, "version of the new model (default: as train's default, above the source's)")
	c.Flags().StringVar(&data, "data", "", "CSV file to score the source and the copy on")
	c.Flags().StringVar(&target, "target", "", "target column of --data (default: the model's target)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.MarkFlagRequired("model")
	c.MarkFlagRequired("out")
	return c
}
