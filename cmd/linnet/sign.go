package main

import (
	"crypto/ed25519"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/linnet-edge/linnet/model"
)

func init() { commands = append(commands, newSignCmd) }

func newSignCmd(e *env) *cobra.Command {
	var key string
	c := &cobra.Command{
		Use:   "sign --key KEY M.lnm",
		Short: "sign a model file in place with an Ed25519 key",
		Long: "sign appends an Ed25519 signature over the whole file (version included)\n" +
			"and replaces the file atomically. An earlier signature is replaced.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, err := model.ReadPrivateKey(key)
			if err != nil {
				return err
			}
			_, b, err := model.ReadFile(args[0])
			if err != nil {
				return err
			}
			s, err := model.Sign(b, priv)
			if err != nil {
				return err
			}
			pub := priv.Public().(ed25519.PublicKey)
			if err := model.Verify(s, []ed25519.PublicKey{pub}); err != nil {
				return fmt.Errorf("signature does not verify: %w", err)
			}
			if err := model.WriteFile(args[0], s); err != nil {
				return fmt.Errorf("write %q: %w", args[0], err)
			}
			fmt.Fprintf(e.stdout, "signed %s with key %s (%d bytes)\n", args[0], model.KeyID(pub), len(s))
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "private key file from linnet keygen (required)")
	c.MarkFlagRequired("key")
	return c
}
