package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A pod of an old revision that crash-loops is not this rollout's failure. (A Deployment past its progress
// deadline is tested on the control plane, whose controller sets it: TestFailFast/ProgressDeadlineExceeded.)
func TestStatusOldRevisionIsNotTheRolloutsFailure(t *testing.T) {
	w := &workload{
		kind: "Deployment", meta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		obj:      &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment"}},
		replicas: 1,
		current:  func(*corev1.Pod, []appsv1.ReplicaSet) bool { return false },
	}
	old := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0-a"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "web", RestartCount: 7, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}
	st := buildStatus(w, []corev1.Pod{old}, nil, nil)
	if st.Failure != nil || st.Pods[0].Reason != "CrashLoopBackOff" || st.Pods[0].Restarts != 7 {
		t.Fatalf("old revision's pod: failure %+v, pods %+v", st.Failure, st.Pods)
	}
}
