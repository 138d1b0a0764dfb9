package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newKeygenCmd) }

func newKeygenCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen --out KEY",
		Short: "create an Ed25519 key pair for signing models (KEY and KEY.pub)",
		Long: "keygen writes KEY (the private key, PEM PKCS #8, mode 0600) and KEY.pub\n" +
			"(the public key, PEM PKIX), the forms openssl uses. Gateways trust KEY.pub\n" +
			"(run --trust); keep KEY where models are signed. It never overwrites a key.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := model.GenerateKeyFiles(out, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s and %s.pub (key id %s)\n", out, out, model.KeyID(pub))
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "private key file to create; the public key goes to the same name + .pub (required)")
	c.MarkFlagRequired("out")
	return c
}
