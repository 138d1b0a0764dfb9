package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/daemon"
)

func init() { commands = append(commands, newRunCmd) }

func newRunCmd(e *env) *cobra.Command {
	var (
		file, broker, dataDir, gateway, model, metrics string
		trust                                          []string
		printConfig, skipSelftest                      bool
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "serve predictions over MQTT and learn from labelled readings",
		Long: `run is the service. Settings come from the defaults, then --config (TOML,
see scripts/linnet.toml), then LINNET_* environment variables
(LINNET_MQTT_BROKER, LINNET_PIPELINE_WORKERS, ...), then these flags.
With no broker configured it starts the embedded broker on 127.0.0.1:1883.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := daemon.LoadConfig(file, os.LookupEnv)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			set := func(name string, dst *string, v string) {
				if f.Changed(name) {
					*dst = v
				}
			}
			set("broker", &cfg.MQTT.Broker, broker)
			set("data-dir", &cfg.DataDir, dataDir)
			set("gateway", &cfg.Gateway, gateway)
			set("model", &cfg.Model, model)
			set("metrics", &cfg.Metrics.Listen, metrics)
			if f.Changed("trust") {
				cfg.Trust = trust
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if printConfig {
				b, err := cfg.TOML()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(b)
				return err
			}
			log := e.log
			if cfg.LogLevel != "info" {
				var lv slog.Level
				_ = lv.UnmarshalText([]byte(cfg.LogLevel))
				log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lv}))
			}
			// Before anything uses a kernel: one that fails its check (a
			// VM claiming features it cannot run) sends every operation
			// to the generic kernels, logged, instead of wrong answers.
			if !skipSelftest {
				kernelSelfTest(cmd.Context(), log)
			}
			daemon.SoftwareVersion = version
			return daemon.Run(cmd.Context(), cfg, log)
		},
	}
	fl := c.Flags()
	fl.StringVar(&file, "config", "", "TOML config file")
	fl.StringVar(&broker, "broker", "", "broker URL (tcp://, ssl://...); empty: the embedded broker")
	fl.StringVar(&dataDir, "data-dir", "", "data directory (model store)")
	fl.StringVar(&gateway, "gateway", "", "gateway id (default: from the machine id)")
	fl.StringVar(&model, "model", "", "import and activate this .lnm file at start")
	fl.StringVar(&metrics, "metrics", "", "metrics and /healthz address (loopback); empty disables")
	fl.StringArrayVar(&trust, "trust", nil, "Ed25519 public key accepted for OTA models (repeatable)")
	fl.BoolVar(&printConfig, "print-config", false, "print the effective config as TOML and exit")
	fl.BoolVar(&skipSelftest, "skip-selftest", false, "do not check the SIMD kernels against generic at start (the check runs them all in one child process, about 0.1 s; none with LINNET_KERNELS=generic)")
	return c
}
