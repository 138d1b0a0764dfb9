package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/daemon/monitor"
	"github.com/linnet-edge/linnet/model"
)

// withServer adds --server URL to the models command: list, history and
// export then read the running daemon's live API (the metrics listener)
// instead of the store, which the daemon holds while it runs. Other
// subcommands refuse --server.
func withServer(e *env, c *cobra.Command) *cobra.Command {
	var server string
	pf := c.PersistentFlags()
	pf.StringVar(&server, "server", "", "read a running daemon's live API at URL (e.g. http://127.0.0.1:9464) instead of --db; list, history and export only")
	if pf.Lookup("name") == nil {
		pf.String("name", "", "the served model to read with --server (default: the only one)")
	}
	// --db is required only without --server; the store commands check it.
	delete(pf.Lookup("db").Annotations, cobra.BashCompOneRequiredFlag)
	for _, sub := range c.Commands() {
		local := sub.RunE
		remote := map[string]func(*serverClient, *cobra.Command, []string) error{
			"list": serverList, "history": serverHistory, "export": serverExport,
		}[sub.Name()]
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			if server == "" {
				return local(cmd, args)
			}
			if remote == nil {
				return fmt.Errorf("models %s works on the store (--db); --server serves list, history and export", cmd.Name())
			}
			timeout, _ := cmd.Flags().GetDuration("timeout")
			sc := &serverClient{e: e, base: strings.TrimSuffix(server, "/"), http: &http.Client{Timeout: max(timeout, time.Second)}}
			sc.asJSON, _ = cmd.Flags().GetBool("json")
			sc.name, _ = cmd.Flags().GetString("name")
			return remote(sc, cmd, args)
		}
	}
	return c
}

// maxServerBytes bounds an API answer: above the largest model file.
const maxServerBytes = 64 << 20

type serverClient struct {
	e      *env
	base   string
	http   *http.Client
	asJSON bool
	name   string
}

// get fetches path from the live API; a non-200 answer becomes its error.
func (s *serverClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	r, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("live API: %w", err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, maxServerBytes))
	if err != nil {
		return nil, fmt.Errorf("live API %s: %w", path, err)
	}
	if r.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("live API %s: %s", path, e.Error)
		}
		return nil, fmt.Errorf("live API %s: %s", path, r.Status)
	}
	return b, nil
}

func (s *serverClient) models(ctx context.Context) ([]monitor.ModelStatus, error) {
	b, err := s.get(ctx, "/v1/models")
	if err != nil {
		return nil, err
	}
	var r struct{ Models []monitor.ModelStatus }
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("live API /v1/models: %w", err)
	}
	return r.Models, nil
}

// model returns --name, or the only served model's name.
func (s *serverClient) model(ctx context.Context) (string, error) {
	if s.name != "" {
		return s.name, nil
	}
	ms, err := s.models(ctx)
	if err != nil {
		return "", err
	}
	if len(ms) != 1 {
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = m.Name
		}
		return "", fmt.Errorf("the daemon serves %d models (%s): choose one with --name", len(ms), strings.Join(names, ", "))
	}
	return ms[0].Name, nil
}

type serverListReport struct {
	Models []monitor.ModelStatus `json:"models"`
}

func serverList(s *serverClient, cmd *cobra.Command, _ []string) error {
	ms, err := s.models(cmd.Context())
	if err != nil {
		return err
	}
	if s.asJSON {
		if ms == nil {
			ms = []monitor.ModelStatus{}
		}
		return writeJSON(s.e.stdout, serverListReport{Models: ms})
	}
	tw := tabwriter.NewWriter(s.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tLEARNING\tREADINGS/S\tLOSS\tDRIFT")
	for _, m := range ms {
		drift := "-"
		for _, d := range m.Drift {
			if d.Alert {
				drift = "alert: " + d.Feature
				break
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.4g\t%s\n", m.Name, m.Version, m.Learning, m.Throughput, m.Loss, drift)
	}
	return tw.Flush()
}

func serverHistory(s *serverClient, cmd *cobra.Command, _ []string) error {
	name, err := s.model(cmd.Context())
	if err != nil {
		return err
	}
	b, err := s.get(cmd.Context(), "/v1/models/"+url.PathEscape(name)+"/history")
	if err != nil {
		return err
	}
	var r struct {
		Events []monitor.Event `json:"events"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("live API history: %w", err)
	}
	if r.Events == nil {
		r.Events = []monitor.Event{}
	}
	if s.asJSON {
		return writeJSON(s.e.stdout, r)
	}
	tw := tabwriter.NewWriter(s.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTION\tVERSION\tPREVIOUS\tSOURCE\tREASON")
	for _, ev := range r.Events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", ev.Seq, ev.Time.Format(time.RFC3339), ev.Action, ev.Version, ev.Previous, ev.Source, ev.Reason)
	}
	return tw.Flush()
}

// serverExport writes the serving model with its learned weights; only
// "active" (or the served version's number) makes sense against a daemon.
func serverExport(s *serverClient, cmd *cobra.Command, args []string) error {
	out, _ := cmd.Flags().GetString("out")
	name, err := s.model(cmd.Context())
	if err != nil {
		return err
	}
	file, err := s.get(cmd.Context(), "/v1/models/"+url.PathEscape(name)+"/export")
	if err != nil {
		return err
	}
	m, err := model.Decode(file)
	if err != nil {
		return fmt.Errorf("live API export of %q: %w", name, err)
	}
	if args[0] != "active" {
		v, err := parseVersion(args[0])
		if err != nil {
			return err
		}
		if v != m.Version {
			return fmt.Errorf("--server exports the serving model's learned weights: ask for active (%q serves version %d)", name, m.Version)
		}
	}
	if err := model.WriteFile(out, file); err != nil {
		return fmt.Errorf("write %q: %w", out, err)
	}
	if s.asJSON {
		return writeJSON(s.e.stdout, map[string]any{"file": out, "bytes": len(file), "model": name, "version": m.Version})
	}
	fmt.Fprintf(s.e.stdout, "wrote %s (%d bytes): %s version %d with its learned weights\n", out, len(file), name, m.Version)
	return nil
}
