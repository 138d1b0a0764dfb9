package main

import (
	"fmt"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newInspectCmd) }

type inspectFeature struct {
	Name   string   `json:"name"`
	Mean   float32  `json:"mean"`
	Std    float32  `json:"std"`
	Weight float32  `json:"weight"`
	Min    *float32 `json:"min,omitempty"`
	Max    *float32 `json:"max,omitempty"`
}

// inspectColumn is one input column of a model with preprocessing.
type inspectColumn struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"` // numeric, onehot, hashed
	Fill         *float32 `json:"fill,omitempty"`
	Categories   []string `json:"categories,omitempty"`
	FillCategory string   `json:"fill_category,omitempty"`
	HashBits     int      `json:"hash_bits,omitempty"`
	Indicator    bool     `json:"indicator,omitempty"`
}

type inspectStats struct {
	TargetMean float32 `json:"target_mean"`
	TargetStd  float32 `json:"target_std"`
	TargetMin  float32 `json:"target_min"`
	TargetMax  float32 `json:"target_max"`
}

type inspectReport struct {
	File      string           `json:"file"`
	Format    int              `json:"format_version"`
	Bytes     int              `json:"bytes"`
	Signed    bool             `json:"signed"`
	Signer    string           `json:"signer,omitempty"`
	Rollback  bool             `json:"rollback"` // a signed rollback: OTA accepts it though it is older
	Version   int64            `json:"version"`
	Parent    int64            `json:"parent"`
	Created   *time.Time       `json:"created,omitempty"`
	Target    string           `json:"target"`
	Loss      model.Loss       `json:"loss"`
	Delta     float32          `json:"delta,omitempty"`
	Scheme    model.Scheme     `json:"scheme"`
	BlockSize int              `json:"block_size,omitempty"`
	Width     int              `json:"width"`
	Bias      float32          `json:"bias"`
	Metrics   map[string]any   `json:"metrics"` // float64, or null when NaN or infinite
	Features  []inspectFeature `json:"features"`
	// Missing and Columns describe the preprocessing (format 2 and later).
	Missing string          `json:"missing,omitempty"`
	Columns []inspectColumn `json:"columns,omitempty"`
	Stats   *inspectStats   `json:"stats,omitempty"`
}

func newInspectCmd(e *env) *cobra.Command {
	var asJSON bool
	var all bool
	c := &cobra.Command{
		Use:   "inspect M.lnm",
		Short: "show a model file's metadata, scaling and weights",
		Long: "inspect decodes a .lnm file (checking its CRC) and prints its metadata.\n" +
			"It does not verify the signature: `linnet models verify` or the daemon's --trust do.\n" +
			"Weights are in standardized space: weight * (x - mean) / std.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, b, err := model.ReadFile(args[0])
			if err != nil {
				return err
			}
			format, _ := model.FileFormat(b)
			r := inspectReport{
				File: args[0], Format: format, Bytes: len(b), Signed: model.IsSigned(b), Signer: model.SignerID(b), Rollback: model.IsRollback(b),
				Version: m.Version, Parent: m.Parent, Target: m.Target, Loss: m.Loss, Delta: m.Delta,
				Scheme: m.Scheme, Width: len(m.Features), Bias: m.Bias, Metrics: map[string]any{},
				Features: make([]inspectFeature, len(m.Features)),
			}
			if m.Scheme != model.F32 {
				r.BlockSize = 32
			}
			if !m.Created.IsZero() {
				r.Created = &m.Created
			}
			for k, v := range m.Metrics {
				// JSON has no NaN: an undefined metric (r2 of a constant
				// target) prints as null.
				if math.IsNaN(v) || math.IsInf(v, 0) {
					r.Metrics[k] = nil
				} else {
					r.Metrics[k] = v
				}
			}
			for i, f := range m.Features {
				r.Features[i] = inspectFeature{Name: f, Mean: m.Mean[i], Std: m.Std[i], Weight: m.Weights[i]}
				if m.Min != nil {
					r.Features[i].Min, r.Features[i].Max = &m.Min[i], &m.Max[i]
				}
			}
			if m.TargetStd != 0 || m.TargetMax != 0 || m.TargetMin != 0 {
				r.Stats = &inspectStats{m.TargetMean, m.TargetStd, m.TargetMin, m.TargetMax}
			}
			if p := m.Preprocessing; p != nil {
				r.Missing = p.Missing.String()
				for _, c := range p.Columns {
					ic := inspectColumn{Name: c.Name, Kind: c.Kind.String(), Categories: c.Categories,
						FillCategory: c.FillCategory, HashBits: int(c.HashBits), Indicator: c.Indicator}
					if c.Kind == model.Numeric {
						ic.Fill = &c.Fill
					}
					r.Columns = append(r.Columns, ic)
				}
			}
			if asJSON {
				return writeJSON(e.stdout, r)
			}
			w := e.stdout
			fmt.Fprintf(w, "file      %s (%d bytes, format v%d)\n", r.File, r.Bytes, r.Format)
			if r.Signed {
				fmt.Fprintf(w, "signed    yes, key %s (not verified here)\n", r.Signer)
			} else {
				fmt.Fprintln(w, "signed    no")
			}
			fmt.Fprintf(w, "version   %d (parent %d)\n", r.Version, r.Parent)
			if r.Rollback {
				fmt.Fprintln(w, "rollback  yes: OTA accepts it over a newer version when it is signed")
			}
			if r.Created != nil {
				fmt.Fprintf(w, "created   %s\n", r.Created.Format(time.RFC3339))
			}
			fmt.Fprintf(w, "target    %s\nloss      %s", r.Target, r.Loss)
			if r.Loss == model.Huber {
				fmt.Fprintf(w, " (delta %g)", r.Delta)
			}
			fmt.Fprintf(w, "\nscheme    %s\nwidth     %d features\nbias      %g\n", r.Scheme, r.Width, r.Bias)
			if r.Stats != nil {
				fmt.Fprintf(w, "stats     target mean %g, std %g, range [%g, %g]\n", r.Stats.TargetMean, r.Stats.TargetStd, r.Stats.TargetMin, r.Stats.TargetMax)
			}
			if r.Columns != nil {
				fmt.Fprintf(w, "missing   %s\n", r.Missing)
			}
			for i, c := range r.Columns {
				if i == 20 && !all {
					fmt.Fprintf(w, "column    ... %d more (--all)\n", len(r.Columns)-20)
					break
				}
				fmt.Fprintf(w, "column    %s\n", describeColumn(c, all))
			}
			for _, k := range inspectMetricNames(m.Metrics) {
				fmt.Fprintf(w, "metric    %s = %g\n", k, m.Metrics[k])
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "\nFEATURE\tMEAN\tSTD\tWEIGHT\t")
			for i, f := range r.Features {
				if i == 20 && !all {
					fmt.Fprintf(tw, "... %d more (--all)\t\t\t\t\n", len(r.Features)-20)
					break
				}
				fmt.Fprintf(tw, "%s\t%.6g\t%.6g\t%.6g\t\n", f.Name, f.Mean, f.Std, f.Weight)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (every feature)")
	c.Flags().BoolVar(&all, "all", false, "list every feature, not the first 20")
	return c
}

func inspectMetricNames(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// describeColumn is one line of inspect's text output for an input column.
func describeColumn(c inspectColumn, all bool) string {
	s := c.Name + ": " + c.Kind
	switch {
	case c.Fill != nil:
		s += fmt.Sprintf(", missing -> %g", *c.Fill)
	case c.FillCategory != "":
		s += fmt.Sprintf(", missing -> %q", c.FillCategory)
	}
	if c.HashBits > 0 {
		s += fmt.Sprintf(", %d hash bits", c.HashBits)
	}
	if len(c.Categories) > 0 {
		cats := c.Categories
		more := ""
		if len(cats) > 10 && !all {
			more = fmt.Sprintf(" and %d more", len(cats)-10)
			cats = cats[:10]
		}
		s += fmt.Sprintf(", %d categories %q%s", len(c.Categories), cats, more)
	}
	if c.Indicator {
		s += ", missing indicator"
	}
	return s
}
