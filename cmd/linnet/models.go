package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

func init() { commands = append(commands, newModelsCmd) }

// modelsFlags are the flags every models subcommand shares.
type modelsFlags struct {
	db      string
	name    string
	asJSON  bool
	timeout time.Duration
	trust   []string
}

// open opens the store; readOnly commands take a shared lock and never
// create the file.
func (f *modelsFlags) open(readOnly, repair bool, e *env) (*store.Store, error) {
	if f.db == "" {
		return nil, errors.New("--db is required")
	}
	keys, err := f.keys()
	if err != nil {
		return nil, err
	}
	return store.Open(f.db, store.Options{
		Timeout: f.timeout, ReadOnly: readOnly, Repair: repair, Trusted: keys,
		Logger: e.log.With("component", "store"),
	})
}

// modelName is --name, DefaultModel if it is not given.
func (f *modelsFlags) modelName() string {
	if f.name == "" {
		return store.DefaultModel
	}
	return f.name
}

// model returns the handle of the --name model in s.
func (f *modelsFlags) model(s *store.Store) (*store.Model, error) {
	m, err := s.Model(f.modelName())
	if err != nil {
		return nil, fmt.Errorf("--name: %w", err)
	}
	return m, nil
}

// openModel opens the store and returns it with the --name model.
func (f *modelsFlags) openModel(readOnly bool, e *env) (*store.Store, *store.Model, error) {
	if err := store.CheckName(f.modelName()); err != nil {
		return nil, nil, fmt.Errorf("--name: %w", err)
	}
	s, err := f.open(readOnly, false, e)
	if err != nil {
		return nil, nil, err
	}
	m, err := f.model(s)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, m, nil
}

type modelsListReport struct {
	Active int64        `json:"active"`
	Models []store.Info `json:"models"`
}

type modelsActiveReport struct {
	Active   int64 `json:"active"`
	Previous int64 `json:"previous"`
}

func newModelsCmd(e *env) *cobra.Command {
	f := &modelsFlags{}
	c := &cobra.Command{
		Use:   "models",
		Short: "manage the model store: list, activate, rollback, import, export, verify, prune, history, devices",
		Long: "models works on the daemon's bbolt store (--db), on the model named by --name\n" +
			"(default \"default\", the model of a configuration without [[models]]). While the\n" +
			"daemon runs it holds the file: a command gives up after --timeout with a message\n" +
			"saying so.",
	}
	pf := c.PersistentFlags()
	pf.StringVar(&f.db, "db", "", "store file (required)")
	// The default is empty, not store.DefaultModel: with a running
	// daemon's API instead of the store, no name means its only model.
	pf.StringVar(&f.name, "name", "", `model name (default "default")`)
	pf.BoolVar(&f.asJSON, "json", false, "print JSON")
	pf.DurationVar(&f.timeout, "timeout", store.DefaultTimeout, "how long to wait for another process's lock on the store")
	pf.StringArrayVar(&f.trust, "trust", nil, "public key (KEY.pub) signed models must verify against; repeatable")
	c.MarkPersistentFlagRequired("db")

	c.AddCommand(
		modelsList(e, f), modelsImport(e, f), modelsActivate(e, f), modelsRollback(e, f),
		modelsExport(e, f), modelsVerify(e, f), modelsPrune(e, f), modelsHistory(e, f),
		modelsNames(e, f), modelsDevices(e, f),
	)
	return withServer(e, c)
}

func modelsList(e *env, f *modelsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list --db PATH",
		Short: "list the stored model versions and the active one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, m, err := f.openModel(true, e)
			if err != nil {
				return err
			}
			defer s.Close()
			infos, err := m.List()
			if err != nil {
				return err
			}
			r := modelsListReport{Models: infos}
			if r.Models == nil {
				r.Models = []store.Info{}
			}
			for _, in := range infos {
				if in.Active {
					r.Active = in.Version
				}
			}
			if f.asJSON {
				return writeJSON(e.stdout, r)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\tVERSION\tSCHEME\tWIDTH\tBYTES\tSIGNED\tCREATED")
			for _, in := range infos {
				mark := ""
				if in.Active {
					mark = "*"
				}
				created := ""
				if !in.Created.IsZero() {
					created = in.Created.Format(time.RFC3339)
				}
				if in.Err != "" {
					created = "damaged: " + in.Err
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%v\t%s\n", mark, in.Version, in.Scheme, in.Width, in.Bytes, in.Signed, created)
			}
			return tw.Flush()
		},
	}
}

func modelsImport(e *env, f *modelsFlags) *cobra.Command {
	var activate bool
	c := &cobra.Command{
		Use:   "import --db PATH M.lnm [--activate]",
		Short: "store a model file (checked first), optionally activating it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, file, err := model.ReadFile(args[0])
			if err != nil {
				return err
			}
			s, m, err := f.openModel(false, e)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := m.Put(file, store.SourceCLI)
			if err != nil {
				return err
			}
			if activate {
				if err := m.Activate(v, store.SourceCLI); err != nil {
					return err
				}
			}
			if f.asJSON {
				return writeJSON(e.stdout, map[string]any{"version": v, "activated": activate})
			}
			fmt.Fprintf(e.stdout, "imported version %d", v)
			if activate {
				fmt.Fprint(e.stdout, " (active)")
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	c.Flags().BoolVar(&activate, "activate", false, "make it the active model")
	return c
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("version %q is not a positive whole number", s)
	}
	return v, nil
}

func modelsActivate(e *env, f *modelsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "activate --db PATH VERSION",
		Short: "make a stored version the active model (checked again first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVersion(args[0])
			if err != nil {
				return err
			}
			s, m, err := f.openModel(false, e)
			if err != nil {
				return err
			}
			defer s.Close()
			prev, err := m.ActiveVersion()
			if err != nil {
				return err
			}
			if err := m.Activate(v, store.SourceCLI); err != nil {
				return err
			}
			return printActive(e, f, m, prev)
		},
	}
}

func modelsRollback(e *env, f *modelsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback --db PATH",
		Short: "make the previously active version active again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, m, err := f.openModel(false, e)
			if err != nil {
				return err
			}
			defer s.Close()
			prev, err := m.ActiveVersion()
			if err != nil {
				return err
			}
			if err := m.Rollback(store.SourceCLI); err != nil {
				return err
			}
			return printActive(e, f, m, prev)
		},
	}
}

func printActive(e *env, f *modelsFlags, m *store.Model, prev int64) error {
	v, err := m.ActiveVersion()
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeJSON(e.stdout, modelsActiveReport{Active: v, Previous: prev})
	}
	fmt.Fprintf(e.stdout, "active version %d (was %d)\n", v, prev)
	return nil
}

func modelsExport(e *env, f *modelsFlags) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export --db PATH VERSION|active --out M.lnm",
		Short: "write a stored model file out, byte for byte (signature included)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, m, err := f.openModel(true, e)
			if err != nil {
				return err
			}
			defer s.Close()
			var file []byte
			if args[0] == "active" {
				_, file, err = m.Active()
			} else {
				var v int64
				if v, err = parseVersion(args[0]); err == nil {
					file, err = m.Get(v)
				}
			}
			if err != nil {
				return err
			}
			if err := model.WriteFile(out, file); err != nil {
				return fmt.Errorf("write %q: %w", out, err)
			}
			if f.asJSON {
				return writeJSON(e.stdout, map[string]any{"file": out, "bytes": len(file)})
			}
			fmt.Fprintf(e.stdout, "wrote %s (%d bytes)\n", out, len(file))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write (required)")
	c.MarkFlagRequired("out")
	return c
}

type modelsVerifyReport struct {
	OK       bool     `json:"ok"`
	Models   int      `json:"models"`
	Active   int64    `json:"active"`
	Problems []string `json:"problems"`
}

func modelsVerify(e *env, f *modelsFlags) *cobra.Command {
	var repair bool
	c := &cobra.Command{
		Use:   "verify --db PATH [--trust KEY.pub]... [--repair]",
		Short: "check the store file, every model's checksum and, with --trust, every signature",
		Long: "verify runs bbolt's page check and checks every stored model (CRC; signatures\n" +
			"against --trust keys) and checkpoint. It exits non-zero if anything is wrong.\n" +
			"--repair moves a damaged file aside and starts a fresh one from what it can read.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := f.keys()
			if err != nil {
				return err
			}
			s, err := f.open(!repair, repair, e)
			r := modelsVerifyReport{Problems: []string{}}
			if err != nil {
				if !errors.Is(err, store.ErrDamaged) {
					return err
				}
				r.Problems = append(r.Problems, err.Error())
			} else {
				defer s.Close()
				if r.Problems, r.Models, r.Active, err = verifyModels(s, f.modelName(), keys, len(f.trust) > 0); err != nil {
					return err
				}
			}
			r.OK = len(r.Problems) == 0
			if f.asJSON {
				if err := writeJSON(e.stdout, r); err != nil {
					return err
				}
			} else if r.OK {
				fmt.Fprintf(e.stdout, "ok: %d models, active %d\n", r.Models, r.Active)
			}
			if !r.OK {
				return fmt.Errorf("store %q failed verification:\n  %s", f.db, strings.Join(r.Problems, "\n  "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&repair, "repair", false, "move a damaged file aside and rebuild from what can be read")
	return c
}

// verifyModels checks every version of every model of s (signatures too
// with checkSigs) and returns the problems, how many versions there are,
// and the active version of model name.
func verifyModels(s *store.Store, name string, keys []ed25519.PublicKey, checkSigs bool) (problems []string, versions int, active int64, err error) {
	problems = []string{}
	names, err := s.Models()
	if err != nil {
		return nil, 0, 0, err
	}
	for _, n := range names {
		m, err := s.Model(n)
		if err != nil {
			return nil, 0, 0, err
		}
		prefix := ""
		if n != store.DefaultModel {
			prefix = "model " + n + ": "
		}
		infos, err := m.List()
		if err != nil {
			return nil, 0, 0, err
		}
		versions += len(infos)
		var act int64
		for _, in := range infos {
			if in.Active {
				act = in.Version
			}
			if in.Err != "" {
				problems = append(problems, fmt.Sprintf("%sversion %d: %s", prefix, in.Version, in.Err))
				continue
			}
			if checkSigs && in.Signed {
				if file, err := m.Get(in.Version); err != nil {
					problems = append(problems, prefix+err.Error())
				} else if err := model.Verify(file, keys); err != nil {
					problems = append(problems, fmt.Sprintf("%sversion %d: %v", prefix, in.Version, err))
				}
			}
		}
		if act != 0 {
			if _, _, err := m.Active(); err != nil {
				problems = append(problems, prefix+err.Error())
			}
		}
		if n == name {
			active = act
		}
	}
	return problems, versions, active, nil
}

// keys reads the --trust public keys.
func (f *modelsFlags) keys() ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, p := range f.trust {
		k, err := model.ReadPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("--trust: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func modelsPrune(e *env, f *modelsFlags) *cobra.Command {
	var keep int
	c := &cobra.Command{
		Use:   "prune --db PATH --keep N",
		Short: "delete all but the newest N versions (never the active one or its predecessor)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, m, err := f.openModel(false, e)
			if err != nil {
				return err
			}
			defer s.Close()
			before, err := m.List()
			if err != nil {
				return err
			}
			if err := m.Prune(keep); err != nil {
				return err
			}
			after, err := m.List()
			if err != nil {
				return err
			}
			kept := map[int64]bool{}
			r := struct {
				Deleted []int64 `json:"deleted"`
				Kept    []int64 `json:"kept"`
			}{Deleted: []int64{}, Kept: []int64{}}
			for _, in := range after {
				kept[in.Version] = true
				r.Kept = append(r.Kept, in.Version)
			}
			for _, in := range before {
				if !kept[in.Version] {
					r.Deleted = append(r.Deleted, in.Version)
				}
			}
			if f.asJSON {
				return writeJSON(e.stdout, r)
			}
			fmt.Fprintf(e.stdout, "deleted %v, kept %v\n", r.Deleted, r.Kept)
			return nil
		},
	}
	c.Flags().IntVar(&keep, "keep", store.DefaultKeep, "versions to keep")
	return c
}

func modelsHistory(e *env, f *modelsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "history --db PATH",
		Short: "show every import, activation, rollback and deletion",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, m, err := f.openModel(true, e)
			if err != nil {
				return err
			}
			defer s.Close()
			h, err := m.History()
			if err != nil {
				return err
			}
			if h == nil {
				h = []store.Event{}
			}
			if f.asJSON {
				return writeJSON(e.stdout, map[string]any{"events": h})
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTION\tVERSION\tPREVIOUS\tSOURCE\tREASON")
			for _, ev := range h {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", ev.Seq, ev.Time.Format(time.RFC3339), ev.Action, ev.Version, ev.Previous, ev.Source, ev.Reason)
			}
			return tw.Flush()
		},
	}
}
