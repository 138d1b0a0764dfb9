package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/client"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newPushCmd) }

func newPushCmd(e *env) *cobra.Command {
	var (
		o                        client.PushOptions
		broker, key, file, gw    string
		timeout                  time.Duration
		asJSON                   bool
		fleetT, gatewayT, result string
		statusT                  string
	)
	c := &cobra.Command{
		Use:   "push --broker URL --key KEY --model M.lnm [--gateway ID] [--name NAME]",
		Short: "publish a signed model to the fleet or one gateway and print the results",
		Long: `push signs the model with KEY unless it already carries KEY's signature,
publishes it retained (a gateway that connects later still gets it) on
linnet/ota/model, or on linnet/<ID>/ota/model with --gateway, and prints the
results gateways publish on linnet/<gateway>/ota/result for this version.
Before publishing it reads the gateways' retained status messages: a fleet
push waits (at most --timeout) for a result from every gateway online, or
from --expect gateways; a push to a --gateway nobody knows fails at once,
naming the known ones, and one to an offline gateway is published (it applies
when the gateway connects) without waiting. It exits non-zero when a gateway
refused the model (already_active is not a refusal), when an awaited gateway
did not answer, or when the gateway pushed to is offline. --rollback --from V
wraps the model in a signed rollback file: gateways serving version V accept
it although it is older, each once, until --expires (default 24h) from now,
and with --gateway only that gateway. A replayed rollback file is refused
(replay) and withdraws nothing. On gateways serving several models
([[models]]), --name NAME pushes to that model's topics, linnet/ota/NAME or
linnet/<ID>/ota/NAME, and waits only for the gateways whose status lists it;
the other models are not touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, err := model.ReadPrivateKey(key)
			if err != nil {
				return err
			}
			_, b, err := model.ReadFile(file)
			if err != nil {
				return err
			}
			o.MQTT.Broker, o.Key, o.Model, o.Gateway, o.Timeout = broker, priv, b, gw, timeout
			o.FleetTopic, o.GatewayTopic, o.ResultTopic, o.StatusTopic = fleetT, gatewayT, result, statusT
			if !asJSON {
				o.OnResult = func(r wire.OTAResult) {
					verdict := "refused"
					switch {
					case r.Accepted:
						verdict = "accepted"
					case r.Reason == wire.OTAAlreadyActive:
						verdict = "unchanged"
					}
					fmt.Fprintf(e.stdout, "%s: version %d %s (%s), active %d: %s\n", r.Gateway, *r.Version, verdict, r.Reason, r.Active, r.Detail)
				}
			}
			rep, err := client.Push(cmd.Context(), o)
			if rep != nil && asJSON {
				if rep.Results == nil {
					rep.Results = []wire.OTAResult{}
				}
				if werr := writeJSON(e.stdout, rep); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			refused := 0
			for _, r := range rep.Results {
				if !r.Accepted && r.Reason != wire.OTAAlreadyActive {
					refused++
				}
			}
			if refused > 0 {
				return fmt.Errorf("%d of %d results refused version %d", refused, len(rep.Results), rep.Version)
			}
			if !asJSON && len(rep.Results) == 0 {
				fmt.Fprintf(e.stdout, "published version %d on %s; no gateway online to answer (offline: %v)\n", rep.Version, rep.Topic, rep.Offline)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&broker, "broker", "", "broker URL (tcp://host:1883, ssl://...) (required)")
	f.StringVar(&key, "key", "", "private key file from linnet keygen (required)")
	f.StringVar(&file, "model", "", "the .lnm file to push (required)")
	f.StringVar(&gw, "gateway", "", "push to this gateway only (default: the whole fleet)")
	f.StringVar(&o.Name, "name", "", "the model's name on gateways serving several ([[models]]): its topics linnet/ota/NAME and linnet/<ID>/ota/NAME")
	f.BoolVar(&o.Rollback, "rollback", false, "push a signed rollback file back to this older model (needs --from)")
	f.Int64Var(&o.From, "from", 0, "rollback: the version the gateways serve now and go back from")
	f.DurationVar(&o.Expires, "expires", 0, "rollback: how long the rollback file stays valid (default 24h)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for results")
	f.IntVar(&o.Expect, "expect", 0, "fleet push: stop after results from this many gateways")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringVar(&fleetT, "fleet-topic", "", "fleet topic, if the gateways use another (default linnet/ota/model)")
	f.StringVar(&gatewayT, "gateway-topic", "", "gateway topic template (default linnet/{gateway}/ota/model)")
	f.StringVar(&result, "result-topic", "", "result topic template (default linnet/{gateway}/ota/result)")
	f.StringVar(&statusT, "status-topic", "", "status topic template the gateways are found on (default linnet/{gateway}/status)")
	f.DurationVar(&o.Discover, "discover", 2*time.Second, "how long to listen for the gateways' retained status before publishing")
	f.StringVar(&o.MQTT.Username, "username", "", "MQTT user name")
	f.StringVar(&o.MQTT.PasswordFile, "password-file", "", "file holding the MQTT password")
	f.StringVar(&o.MQTT.CAFile, "ca", "", "CA certificate (PEM) for ssl:// brokers")
	f.StringVar(&o.MQTT.CertFile, "client-cert", "", "client certificate (PEM)")
	f.StringVar(&o.MQTT.KeyFile, "client-key", "", "client key (PEM)")
	for _, n := range []string{"broker", "key", "model"} {
		c.MarkFlagRequired(n)
	}
	return c
}
