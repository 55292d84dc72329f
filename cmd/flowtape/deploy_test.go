package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are the directories under deploy/ that kubectl apply -k
// takes.
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir("../../deploy", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return err
	})
	if err != nil || len(dirs) < 4 {
		t.Fatalf("kustomizations under deploy/: %v, %v", dirs, err)
	}
	return dirs
}

// Every manifest under deploy/ renders with the kustomize library and
// decodes strictly into the Kubernetes API types (an unknown or misspelt
// field fails); every flowtape command line in them is accepted by
// flowtape's own flag parser; the pods run with no capabilities, a
// read-only root file system, no privilege escalation, resource requests
// and probes, and not as root.
func TestDeployManifests(t *testing.T) {
	for _, dir := range kustomizations(t) {
		t.Run(strings.TrimPrefix(dir, "../../"), func(t *testing.T) {
			k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
			res, err := k.Run(filesys.MakeFsOnDisk(), dir)
			if err != nil {
				t.Fatalf("kustomize build %s: %v", dir, err)
			}
			for _, r := range res.Resources() {
				b, err := r.AsYAML()
				if err != nil {
					t.Fatal(err)
				}
				var pod *corev1.PodSpec
				var obj any
				var decoded func() // checks of the decoded object
				switch r.GetKind() {
				case "Deployment":
					d := &appsv1.Deployment{}
					obj, pod = d, &d.Spec.Template.Spec
					decoded = func() { checkSelector(t, r.GetName(), d.Spec.Selector, d.Spec.Template.Labels) }
				case "DaemonSet":
					d := &appsv1.DaemonSet{}
					obj, pod = d, &d.Spec.Template.Spec
					decoded = func() {
						checkSelector(t, r.GetName(), d.Spec.Selector, d.Spec.Template.Labels)
						// A recorder on every node runs the recorder build.
						for _, c := range d.Spec.Template.Spec.Containers {
							if !strings.Contains(c.Image, "flowtape-recorder") {
								t.Errorf("DaemonSet %s/%s runs %s, not the recorder image", r.GetName(), c.Name, c.Image)
							}
						}
					}
				case "Service":
					obj = &corev1.Service{}
				case "ServiceAccount":
					obj = &corev1.ServiceAccount{}
				case "PersistentVolumeClaim":
					obj = &corev1.PersistentVolumeClaim{}
				default:
					t.Fatalf("%s %s: a kind this test does not know", r.GetKind(), r.GetName())
				}
				// Case-sensitive too, as the API server decodes (encoding/json
				// would take readOnlyRootFileSystem for readOnlyRootFilesystem).
				j, err := yaml.YAMLToJSON(b)
				if err != nil {
					t.Fatal(err)
				}
				strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
				if err := errors.Join(append(strict, err)...); err != nil {
					t.Fatalf("%s %s does not decode strictly: %v", r.GetKind(), r.GetName(), err)
				}
				if decoded != nil {
					decoded()
				}
				if pod != nil {
					checkPod(t, r.GetKind()+" "+r.GetName(), pod)
				}
			}
		})
	}
}

func checkSelector(t *testing.T, name string, selector *metav1.LabelSelector, labels map[string]string) {
	t.Helper()
	if selector == nil || len(selector.MatchLabels) == 0 {
		t.Errorf("%s has no selector", name)
		return
	}
	for k, v := range selector.MatchLabels {
		if labels[k] != v {
			t.Errorf("%s: its selector %s=%s does not select its pods", name, k, v)
		}
	}
}

func checkPod(t *testing.T, name string, pod *corev1.PodSpec) {
	t.Helper()
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s mounts a service account token it has no use for", name)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s may run as root", name)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s: want a read-only root file system, no privilege escalation and every capability dropped: %+v", name, c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: want CPU and memory requests and a memory limit", name, c.Name)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s/%s: want liveness (/healthz) and readiness (/readyz) probes", name, c.Name)
		}
		checkCommandLine(t, name+"/"+c.Name, c)
	}
}

// checkCommandLine parses a container's flowtape command line with
// flowtape's own commands and flags, as the kubelet hands it over (with
// $(VAR) references to the container's environment expanded).
func checkCommandLine(t *testing.T, name string, c corev1.Container) {
	t.Helper()
	args := slices.Clone(c.Args)
	for i, a := range args {
		for _, e := range c.Env {
			a = strings.ReplaceAll(a, "$("+e.Name+")", "value-of-"+e.Name)
		}
		if strings.Contains(a, "$(") {
			t.Errorf("%s: %q refers to a variable the container does not have", name, a)
		}
		args[i] = a
	}
	root := newRootCmd(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Fatalf("%s: flowtape %v is no flowtape command: %v", name, args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%s: flowtape %s rejects %v: %v", name, cmd.Name(), rest, err)
	}
	if strings.Contains(c.Image, "flowtape-recorder") && !slices.Contains(recorderVerbs, cmd.Name()) {
		t.Errorf("%s: image %s is the recorder build, which has no %s (only %v)", name, c.Image, cmd.Name(), recorderVerbs)
	}
	if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	// The values the command checks before it starts.
	if v := cmd.Flags().Lookup("max-disk"); v != nil && v.Value.String() != "" {
		if _, err := parseSize(v.Value.String()); err != nil {
			t.Errorf("%s: --max-disk: %v", name, err)
		}
	}
	if cmd.Name() == "record" {
		for _, flag := range []string{"output", "metrics-listen"} {
			if v := cmd.Flags().Lookup(flag); v == nil || v.Value.String() == "" {
				t.Errorf("%s: an always-on recorder needs --%s", name, flag)
			}
		}
		if v := cmd.Flags().Lookup("metrics-listen"); v != nil && !strings.HasSuffix(v.Value.String(), ":9965") {
			t.Errorf("%s: --metrics-listen %s, but the Service and probes use port 9965", name, v.Value.String())
		}
	}
}
