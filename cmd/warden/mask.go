package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/wardenmcp/warden/internal/mask/detect"
)

// newMaskCmd is "warden mask": tools for the sensitive-data detectors.
func newMaskCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mask",
		Short: "Inspect the sensitive-data detectors",
	}
	cmd.AddCommand(newMaskEvalCmd())
	return cmd
}

func newMaskEvalCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval FILE",
		Short: "Score the detectors against a labelled data set",
		Long: `Score the built-in detectors against a labelled data set and print
precision, recall and F2 per entity type.

FILE is a JSON array of records in the Presidio research format:
  [{"full_text": "...", "spans": [{"entity_type": "EMAIL_ADDRESS",
    "start_position": 10, "end_position": 26}]}]
Positions are character offsets into full_text.

A detected span counts as a true positive when it overlaps a labelled span
of the same type. Types that are labelled but not detected are listed as
"not detected" (in JSON: precision 0, detected 0).

Exit status: 0 on success, 1 if the file cannot be read or parsed.`,
		Example: `  warden mask eval corpus/pii-presidio-synth-sample.json
  warden mask eval --json labelled.json | jq '.PHONE_NUMBER'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("mask eval: %w", err)
			}
			defer f.Close()
			return detect.RunEval(f, cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
