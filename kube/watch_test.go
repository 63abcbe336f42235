package kube_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/internal/testenv"
	"github.com/codomyrmex/containerization/kube"
)

// requestLog records the requests of a client: "VERB path?query status".
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTrip(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, fmt.Sprintf("%s %s %d", r.Method, r.URL.RequestURI(), status))
		l.mu.Unlock()
		return resp, err
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// count is how many requests contain every one of parts.
func (l *requestLog) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, r := range l.reqs {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *requestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.reqs, "\n")
}

// loggedClient is a client of the test control plane whose requests are logged; token, when set, replaces the
// kubeconfig's credentials.
func loggedClient(t *testing.T, path, ns, token string) (*kube.Client, *requestLog) {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		rc = &rest.Config{Host: rc.Host, TLSClientConfig: rest.TLSClientConfig{CAData: rc.CAData, CAFile: rc.CAFile}, BearerToken: token}
	}
	log := &requestLog{}
	rc.Wrap(log.wrap)
	c, err := kube.NewForConfig(rc, ns, kube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return c, log
}

// A wait follows its objects with watches; when the server ends a watch (here at its timeout of a second), the
// wait opens the next one from the last resourceVersion it saw, without listing again, and still sees the change
// that ends the wait.
func TestWaitResumesAWatchTheServerEnds(t *testing.T) {
	path, admin := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, admin)
	ctx := ctxT(t, 2*time.Minute)
	kube.SetWatchTimeout(t, time.Second)
	lb := "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, selector: {app: x}, ports: [{port: 80}]}\n"
	c, log := loggedClient(t, path, ns, "")
	watches := func() int { return log.count("GET /api/v1/namespaces/"+ns+"/services?", "watch=true") }

	done := make(chan error, 1)
	go func() {
		_, err := c.Apply(ctx, parse(t, lb), kube.ApplyOptions{Name: "lb", Namespace: ns, Wait: true, Timeout: time.Minute})
		done <- err
	}()
	// No load balancer controller runs here: the address is given by hand, once the server has ended (and the
	// wait resumed) the watch twice.
	if !testenv.Eventually(time.Minute, func() bool { return watches() >= 3 }) {
		t.Fatalf("the wait opened %d watches of the services in a minute, want 3 (each lasts a second):\n%s", watches(), log)
	}
	svc, err := admin.Typed().CoreV1().Services(ns).Get(ctx, "lb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	if _, err := admin.Typed().CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Apply(lb) with Wait = %v after the load balancer got its address, want success", err)
	}
	if lists := log.count("GET /api/v1/namespaces/"+ns+"/services?", "fieldSelector=metadata.name%3Dlb", "limit="); lists != 1 {
		t.Errorf("the wait listed the service %d times, want 1 (a watch ended by the server resumes from its resourceVersion):\n%s", lists, log)
	}
	if resumed := log.count("GET /api/v1/namespaces/"+ns+"/services?", "watch=true", "resourceVersion="); resumed < 3 {
		t.Errorf("%d watches from a resourceVersion, want 3 or more:\n%s", resumed, log)
	}
}

// A watch from a resourceVersion the API server no longer holds is answered 410 Gone ("too old resource
// version"); the feed lists the collection anew and watches from there.
func TestWatchRelistsOnGone(t *testing.T) {
	path, admin := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, admin)
	ctx := ctxT(t, time.Minute)
	if _, err := admin.Typed().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "here"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, log := loggedClient(t, path, ns, "")
	lists, err := c.Follow(ctx, corev1.SchemeGroupVersion.WithResource("configmaps"), ns, "1", "here")
	if err != nil {
		t.Fatalf("Follow from resourceVersion 1 = %v, want it to list again and find the ConfigMap:\n%s", err, log)
	}
	if lists != 1 || log.count("watch=true", "resourceVersion=1&") != 1 {
		t.Fatalf("Follow from resourceVersion 1 listed %d times, want 1 after one watch from 1:\n%s", lists, log)
	}
	// The server said so: a 410 answer, or a watch whose one event is the error.
	reqs := strings.Split(log.String(), "\n")
	if !strings.Contains(reqs[0], "resourceVersion=1&") || !strings.Contains(reqs[1], "limit=") {
		t.Errorf("requests = %q, want the watch from 1, then the list", reqs)
	}
}

// Credentials that may get and list but not watch (RBAC without the watch verb): the wait polls instead, and
// still ends when the rollout does, or fails fast with the pod's reason. Each Deployment is held back (its pod
// kept in ContainerCreating) until the watch has been refused, then applied again to roll out or to crash.
func TestWaitPollsWithoutTheWatchVerb(t *testing.T) {
	path, admin := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, admin)
	token := tokenWithout(t, admin, ns, "watch")
	for _, tc := range []struct {
		name, then string // the pods' simulated state once the watch was refused ("": none, they run)
		crash      bool
	}{
		{name: "rolls-out"},
		{name: "crashes", then: "CrashLoopBackOff", crash: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t, 3*time.Minute)
			held := deployment(tc.name, "registry.local/web:1", 1, ", myrmex.codomyrmex.dev/simulate-waiting: ContainerCreating")
			if _, err := admin.Apply(ctx, parse(t, held), kube.ApplyOptions{Name: tc.name, Namespace: ns}); err != nil {
				t.Fatal(err)
			}
			c, log := loggedClient(t, path, ns, token)
			type result struct {
				st  *kube.Status
				err error
			}
			done := make(chan result, 1)
			go func() {
				st, err := c.Wait(ctx, ns, tc.name, 2*time.Minute, nil)
				done <- result{st, err}
			}()
			if !testenv.Eventually(time.Minute, func() bool { return log.count("watch=true", " 403") > 0 }) {
				t.Fatalf("no watch was refused in a minute: the test's credentials may watch:\n%s", log)
			}
			then := deployment(tc.name, "registry.local/web:1", 1, "")
			if tc.then != "" {
				then = deployment(tc.name, "registry.local/web:1", 1, ", myrmex.codomyrmex.dev/simulate-waiting: "+tc.then)
			}
			if _, err := admin.Apply(ctx, parse(t, then), kube.ApplyOptions{Name: tc.name, Namespace: ns}); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if !tc.crash {
				if r.err != nil || r.st.Status != "running" || r.st.ReadyReplicas != 1 {
					t.Fatalf("Wait(%s) without the watch verb = %+v, %v; want running with 1 ready:\n%s", tc.name, r.st, r.err, log)
				}
			} else {
				var re *kube.RolloutError
				if !errors.As(r.err, &re) || !errors.Is(r.err, errdefs.ErrRolloutFailed) || re.TimedOut || re.Reason != tc.then ||
					re.Container != "web" || !strings.HasPrefix(re.Pod, tc.name+"-") {
					t.Fatalf("Wait(%s) without the watch verb = %v (%+v), want %s on container web of one of its pods", tc.name, r.err, re, tc.then)
				}
			}
			if n := log.count("GET /apis/apps/v1/namespaces/" + ns + "/deployments/" + tc.name + " 200"); n < 2 {
				t.Errorf("the wait read the deployment %d times by GET, want it polled after the refused watch:\n%s", n, log)
			}
		})
	}
}

// tokenWithout is a token of a new ServiceAccount of ns that may get and list (and not watch) what a wait reads,
// and do verb nowhere.
func tokenWithout(t *testing.T, c *kube.Client, ns, verb string) string {
	t.Helper()
	var verbs []string
	for _, v := range []string{"get", "list", "watch"} {
		if v != verb {
			verbs = append(verbs, v)
		}
	}
	return tokenFor(t, c, ns, false, rbacv1.PolicyRule{APIGroups: []string{"", "apps"},
		Resources: []string{"configmaps", "pods", "services", "deployments", "replicasets"}, Verbs: verbs})
}

// tokenFor is a token of a new ServiceAccount of ns allowed rules in ns, and with readNamespaces to get the
// namespace itself (a cluster-scoped read, through a ClusterRole removed when the test ends).
func tokenFor(t *testing.T, c *kube.Client, ns string, readNamespaces bool, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	rbac := c.Typed().RbacV1()
	sa := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "tester", Namespace: ns}}
	if _, err := c.Typed().CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tester"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "tester"}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "tester"},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "tester"}, Subjects: sa}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if readNamespaces {
		name := "myrmex-test-" + ns
		labels := map[string]string{testenv.Label: ns}
		if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{ns}, Verbs: []string{"get"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
		if _, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}, Subjects: sa}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rbac.ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	secs := int64(600)
	tr, err := c.Typed().CoreV1().ServiceAccounts(ns).CreateToken(ctx, "tester", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// Credentials that may not list ConfigMaps: the preflight reads each by GET instead, and the apply goes through.
func TestPreflightGetsWhatItMayNotList(t *testing.T) {
	path, admin := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, admin)
	ctx := ctxT(t, time.Minute)
	token := tokenFor(t, admin, ns, true, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"},
		Verbs: []string{"get", "create", "patch"}})
	c, log := loggedClient(t, path, ns, token)
	objs := parse(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"+
		"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	res, err := c.Apply(ctx, objs, kube.ApplyOptions{Name: "cms", Namespace: ns})
	if err != nil {
		t.Fatalf("Apply without the list verb = %v, want success:\n%s", err, log)
	}
	if len(res.Changes) != 3 || res.Changes[0].Action != "created" {
		t.Errorf("changes = %+v, want 3 created", res.Changes)
	}
	if log.count("GET /api/v1/namespaces/"+ns+"/configmaps?", " 403") != 1 {
		t.Errorf("the preflight did not try (once) to list the ConfigMaps:\n%s", log)
	}
	for _, n := range []string{"a", "b", "c"} {
		if log.count("GET /api/v1/namespaces/"+ns+"/configmaps/"+n+" 404") != 1 {
			t.Errorf("the preflight did not read ConfigMap %s by GET after the refused list:\n%s", n, log)
		}
	}
}

// The preflight reads the live objects of a kind with one LIST per namespace when there are more than two, not a
// GET each, and judges them as before: an object made by hand is applied and not adopted, an unchanged one says
// so, a changed one names its fields, and one another application owns stops the apply.
func TestPreflightListsTheLiveObjects(t *testing.T) {
	path, admin := testenv.Kube(t)
	ns := testenv.KubeNamespace(t, admin)
	ctx := ctxT(t, 2*time.Minute)
	if _, err := admin.Typed().CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hand"},
		Data: map[string]string{"k": "user"}}, metav1.CreateOptions{FieldManager: "by-hand"}); err != nil {
		t.Fatal(err)
	}
	// ConfigMaps with data k; the one made by hand keeps its value (another would conflict with its manager).
	cms := func(data string, names ...string) []*kube.Object {
		var b strings.Builder
		for _, n := range names {
			d := data
			if n == "hand" {
				d = "user"
			}
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {k: %s}\n", n, d)
		}
		return parse(t, b.String())
	}
	if _, err := admin.Apply(ctx, cms("theirs", "theirs"), kube.ApplyOptions{Name: "other", Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	c, log := loggedClient(t, path, ns, "")

	res, err := c.Apply(ctx, cms("v", "a", "b", "c", "hand"), kube.ApplyOptions{Name: "mine", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ch := range res.Changes {
		got[ch.Name] = fmt.Sprintf("%s unowned=%v", ch.Action, ch.Unowned)
	}
	want := map[string]string{"a": "created unowned=false", "b": "created unowned=false", "c": "created unowned=false", "hand": "unchanged unowned=true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first apply: changes %v, want %v", got, want)
	}
	lists := log.count("GET /api/v1/namespaces/"+ns+"/configmaps?", "limit=")
	gets := 0
	for _, n := range []string{"a", "b", "c", "hand"} {
		gets += log.count("GET /api/v1/namespaces/" + ns + "/configmaps/" + n + " ")
	}
	if lists != 1 || gets != 0 {
		t.Errorf("the preflight listed the ConfigMaps %d times and read %d by GET, want 1 list and no GET:\n%s", lists, gets, log)
	}

	res, err = c.Apply(ctx, cms("v", "b", "c", "hand"), kube.ApplyOptions{Name: "mine", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range res.Changes {
		if ch.Action != "unchanged" {
			t.Errorf("the same apply again: %s %s, want unchanged", ch.Name, ch.Action)
		}
	}
	res, err = c.Apply(ctx, append(cms("w", "a"), cms("v", "b", "c")...), kube.ApplyOptions{Name: "mine", Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	if ch := res.Changes[0]; ch.Name != "a" || ch.Action != "configured" || len(ch.Fields) != 1 || ch.Fields[0] != `data.k: "v" → "w"` {
		t.Errorf("a changed: change %+v, want configured with data.k: \"v\" → \"w\"", ch)
	}

	_, err = c.Apply(ctx, append(cms("x", "a", "b"), cms("v", "theirs")...), kube.ApplyOptions{Name: "mine", Namespace: ns})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), `application "`+ns+`/other"`) {
		t.Fatalf("taking another application's ConfigMap = %v, want ErrConflict naming it", err)
	}
	a, err := admin.Typed().CoreV1().ConfigMaps(ns).Get(ctx, "a", metav1.GetOptions{})
	if err != nil || a.Data["k"] != "w" {
		t.Errorf("ConfigMap a after the refused apply: %v, %v; want it untouched (k: w)", a.Data, err)
	}
}
