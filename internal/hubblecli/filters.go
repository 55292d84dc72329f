package hubblecli

import (
	"bytes"
	"encoding/json"
	"fmt"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/hubble/cmd/observe"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"
)

// FilterFlags are the filter flags of `hubble observe`, taken from the hubble
// CLI itself: the same names, help, parsing and semantics (including --not,
// --allowlist and --denylist), and the same --print-raw-filters output.
type FilterFlags struct {
	observe *cobra.Command
	flags   *pflag.FlagSet
}

// NewFilterFlags returns the filter flags. Add FlagSet() to a command; after
// it parsed its arguments, Filters() returns the FlowFilters they make.
func NewFilterFlags() *FilterFlags {
	// Each hubble observe command keeps its filter state in its own flag
	// values, so every FilterFlags gets a fresh one.
	cmd := observe.New(viper.New())
	ff := &FilterFlags{observe: cmd, flags: pflag.NewFlagSet("filters", pflag.ContinueOnError)}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if isFilterFlag(f) {
			ff.flags.AddFlag(f)
		}
	})
	return ff
}

// FlagSet is the set of filter flags, shared with the hubble observe command.
func (ff *FilterFlags) FlagSet() *pflag.FlagSet { return ff.flags }

// RawFilters returns the filters as `hubble observe --print-raw-filters`
// prints them (YAML with allowlist and denylist of JSON FlowFilters).
func (ff *FilterFlags) RawFilters() (string, error) {
	var out bytes.Buffer
	ff.observe.SetOut(&out)
	ff.observe.SetErr(&out)
	if err := resetOutputOptions(ff.observe); err != nil {
		return "", err
	}
	ff.observe.SetArgs([]string{"--print-raw-filters", "--use-default-field-masks=false"})
	if err := ff.observe.Execute(); err != nil {
		return "", fmt.Errorf("filter flags: %w", err)
	}
	return out.String(), nil
}

// Filters returns the allowlist and denylist the flags make.
func (ff *FilterFlags) Filters() (allow, deny []*flowpb.FlowFilter, err error) {
	raw, err := ff.RawFilters()
	if err != nil {
		return nil, nil, err
	}
	return ParseRawFilters(raw)
}

// ParseRawFilters parses the --print-raw-filters YAML.
func ParseRawFilters(raw string) (allow, deny []*flowpb.FlowFilter, err error) {
	var lists struct {
		Allowlist []string `json:"allowlist"`
		Denylist  []string `json:"denylist"`
	}
	if err := yaml.Unmarshal([]byte(raw), &lists); err != nil {
		return nil, nil, fmt.Errorf("filters: %w", err)
	}
	parse := func(in []string) ([]*flowpb.FlowFilter, error) {
		var out []*flowpb.FlowFilter
		for _, s := range in {
			f := &flowpb.FlowFilter{}
			// The hubble CLI writes FlowFilters with encoding/json.
			if err := json.Unmarshal([]byte(s), f); err != nil {
				return nil, fmt.Errorf("filter %s: %w", s, err)
			}
			out = append(out, f)
		}
		return out, nil
	}
	if allow, err = parse(lists.Allowlist); err != nil {
		return nil, nil, err
	}
	deny, err = parse(lists.Denylist)
	return allow, deny, err
}
