package hubblecli_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/flowtape/flowtape/internal/hubblecli"
	"github.com/flowtape/flowtape/internal/testutil"
)

// flowtape's filter flags print the same raw filters as hubble observe's.
func TestPrintRawFiltersMatchesHubble(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hubble CLI")
	}
	hubble := testutil.Tool(t, "hubble")
	cases := [][]string{
		{},
		{"-n", "default"},
		{"--namespace", "kube-system", "--pod", "coredns"},
		{"--from-pod", "default/frontend", "--to-pod", "default/cartservice"},
		{"--to-pod", "default/paymentservice", "--http-status", "503"},
		{"--verdict", "DROPPED", "--drop-reason-desc", "POLICY_DENIED"},
		{"-t", "l7", "--protocol", "http", "--http-method", "POST", "--http-path", "/hipstershop.*"},
		{"--from-label", "app=frontend", "--to-label", "app=cartservice"},
		{"-l", "k8s:team=shop", "--ip", "10.8.0.12"},
		{"--to-fqdn", "*.google.internal"},
		{"--from-ip", "10.8.1.0/24", "--to-ip", "10.8.0.12"},
		{"--from-workload", "default/frontend", "--to-service", "default/cartservice", "--port", "7070"},
		{"--from-identity", "2", "--to-port", "53", "--traffic-direction", "ingress"},
		{"--node-name", "boutique/*", "--http-url", "http://frontend:80/.*", "--fqdn", "metadata.google.internal"},
		{"--not", "--namespace", "kube-system"},
		{"--namespace", "default", "--not", "--verdict", "FORWARDED"},
		{"--cel-expression", "_flow.verdict == Verdict.DROPPED"},
		{"--allowlist", `{"source_pod":["default/"]}`, "--denylist", `{"verdict":["DROPPED"]}`},
		{"--from-namespace", "default", "--from-namespace", "kube-system", "--to-all-namespaces"},
		{"--type", "drop", "--type", "trace:to-endpoint"},
	}
	// Combinations hubble refuses are refused alike.
	for _, args := range [][]string{
		{"--from-label", "app=frontend", "-l", "k8s:team=shop"},
		{"--ip", "10.8.0.12", "--from-ip", "10.8.1.0/24"},
	} {
		if _, err := exec.Command(hubble, append([]string{"observe", "--print-raw-filters"}, args...)...).CombinedOutput(); err == nil {
			t.Fatalf("hubble accepted %v", args)
		}
		if err := hubblecli.NewFilterFlags().FlagSet().Parse(args); err == nil || !strings.Contains(err.Error(), "cannot be combined") {
			t.Errorf("flowtape accepted %v: %v", args, err)
		}
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := exec.Command(hubble, append([]string{"observe", "--print-raw-filters"}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("hubble: %v\n%s", err, out)
			}
			ff := hubblecli.NewFilterFlags()
			if err := ff.FlagSet().Parse(args); err != nil {
				t.Fatal(err)
			}
			got, err := ff.RawFilters()
			if err != nil {
				t.Fatal(err)
			}
			if got != string(out) {
				t.Fatalf("flowtape:\n%s\nhubble:\n%s", got, out)
			}
			if strings.TrimSpace(got) == "{}" && len(args) > 0 {
				t.Fatal("flags made no filter")
			}
			if _, _, err := hubblecli.ParseRawFilters(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}
