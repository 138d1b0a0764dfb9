package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

type modelsNamesReport struct {
	Models []modelName `json:"models"`
}

type modelName struct {
	Name     string `json:"name"`
	Active   int64  `json:"active"`
	Versions int    `json:"versions"`
}

func modelsNames(e *env, f *modelsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "names --db PATH",
		Short: "list the models the store holds, with their active versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := f.open(true, false, e)
			if err != nil {
				return err
			}
			defer s.Close()
			names, err := s.Models()
			if err != nil {
				return err
			}
			r := modelsNamesReport{Models: []modelName{}}
			for _, n := range names {
				m, err := s.Model(n)
				if err != nil {
					return err
				}
				infos, err := m.List()
				if err != nil {
					return err
				}
				a, err := m.ActiveVersion()
				if err != nil {
					return err
				}
				r.Models = append(r.Models, modelName{Name: n, Active: a, Versions: len(infos)})
			}
			if f.asJSON {
				return writeJSON(e.stdout, r)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tACTIVE\tVERSIONS")
			for _, m := range r.Models {
				fmt.Fprintf(tw, "%s\t%d\t%d\n", m.Name, m.Active, m.Versions)
			}
			return tw.Flush()
		},
	}
}

type modelsDevicesReport struct {
	Model   string             `json:"model"`
	Devices []store.DeviceInfo `json:"devices"`
}

// deviceExport is the file `models devices export` writes.
type deviceExport struct {
	Model   string    `json:"model"`
	Device  string    `json:"device"`
	Version int64     `json:"version"`
	Updates int64     `json:"updates"`
	Last    time.Time `json:"last_update,omitzero"`
	State   string    `json:"state"` // base64 of the learner state
	// Correction is what the state adds to its version's prediction,
	// when that version is stored.
	Correction *model.DeviceCorrection `json:"correction,omitempty"`
}

func modelsDevices(e *env, f *modelsFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "devices --db PATH [--name N]",
		Short: "list the devices with a per-device learner state, with their update counts",
		Long: "devices lists the per-device learner states of model --name: each device's\n" +
			"model version, updates learned and last update. `devices export DEVICE` writes\n" +
			"one state out as JSON, `devices reset DEVICE` deletes it (the device starts\n" +
			"again from the active version at its next labelled reading).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, m, err := f.openModel(true, e)
			if err != nil {
				return err
			}
			defer s.Close()
			list, err := m.Devices()
			if err != nil {
				return err
			}
			r := modelsDevicesReport{Model: m.Name(), Devices: list}
			if r.Devices == nil {
				r.Devices = []store.DeviceInfo{}
			}
			if f.asJSON {
				return writeJSON(e.stdout, r)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tVERSION\tUPDATES\tLAST UPDATE\tSAVED")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", d.Device, d.Version, d.Updates, rfc3339(d.Last), rfc3339(d.Saved))
			}
			return tw.Flush()
		},
	}
	c.AddCommand(modelsDeviceExport(e, f), modelsDeviceReset(e, f))
	return c
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func modelsDeviceExport(e *env, f *modelsFlags) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export --db PATH [--name N] DEVICE [--out F.json]",
		Short: "write one device's learner state as JSON (to stdout without --out)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, m, err := f.openModel(true, e)
			if err != nil {
				return err
			}
			defer s.Close()
			d, err := m.Device(args[0])
			if err != nil {
				return err
			}
			x := deviceExport{Model: m.Name(), Device: args[0], Version: d.Version, Updates: d.Updates,
				Last: d.Last, State: base64.StdEncoding.EncodeToString(d.State)}
			if file, err := m.Get(d.Version); err == nil {
				if fm, err := model.Decode(file); err == nil {
					if c, err := model.DeviceDelta(fm, d.State); err == nil {
						x.Correction = &c
					}
				}
			}
			if out == "" {
				return writeJSON(e.stdout, x)
			}
			w, err := os.Create(out)
			if err != nil {
				return err
			}
			if err := writeJSON(w, x); err != nil {
				w.Close()
				return fmt.Errorf("write %q: %w", out, err)
			}
			if err := w.Close(); err != nil {
				return fmt.Errorf("write %q: %w", out, err)
			}
			if f.asJSON {
				return writeJSON(e.stdout, map[string]any{"file": out, "device": args[0]})
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write")
	return c
}

func modelsDeviceReset(e *env, f *modelsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reset --db PATH [--name N] DEVICE",
		Short: "delete one device's learner state: it starts again from the active version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, m, err := f.openModel(false, e)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := m.ResetDevice(args[0]); err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(e.stdout, map[string]any{"model": m.Name(), "device": args[0], "reset": true})
			}
			fmt.Fprintf(e.stdout, "reset device %s of model %s\n", args[0], m.Name())
			return nil
		},
	}
}
