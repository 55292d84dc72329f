package schema

import "strings"

// podSuffixChars are the characters Kubernetes draws the random parts of
// generated names from (k8s.io/apimachinery/pkg/util/rand, alphanums): no
// vowels, no 0, 1 or 3, so that no word is spelt by accident.
const podSuffixChars = "bcdfghjklmnpqrstvwxz2456789"

// InferWorkload is the workload a pod's name implies by Kubernetes'
// naming, for pods whose flows never name their workload or app:
//
//	Deployment   <name>-<pod-template-hash>-<5>   productpage-v1-6b746f74dc-ffh56
//	DaemonSet    <name>-<5>                       cilium-x7k2p (a Job's pods too)
//	StatefulSet  <name>-<ordinal>                 redis-0
//
// A CronJob's pods (<cronjob>-<minutes>-<5>) name the CronJob. Any other
// name is the pod's own (a bare pod).
func InferWorkload(pod string) string {
	name, last, ok := cutLast(pod)
	if !ok {
		return pod
	}
	if len(last) == 5 && generated(last) {
		// The pod-template-hash of a ReplicaSet is generated as well (or
		// decimal, from Kubernetes before 1.8; a CronJob's job adds the
		// scheduled minute).
		if base, hash, ok := cutLast(name); ok && len(hash) >= 6 && len(hash) <= 10 && (generated(hash) || decimal(hash)) {
			return base
		}
		return name
	}
	if decimal(last) {
		return name
	}
	return pod
}

// cutLast splits a name at its last dash; ok is false when there is none,
// or nothing on either side of it.
func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func generated(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(podSuffixChars, s[i]) < 0 {
			return false
		}
	}
	return true
}

func decimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
