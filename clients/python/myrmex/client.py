"""The client: HTTP/JSON with urllib, jobs followed over Server-Sent Events."""

import json
import os
import urllib.error
import urllib.parse
import urllib.request


class MyrmexError(Exception):
    """An error the server answered: its JSON error object, and the HTTP status."""

    def __init__(self, error, status=0):
        self.error = dict(error or {})
        self.code = self.error.get("code", "internal")
        self.message = self.error.get("message", "")
        self.op = self.error.get("op", "")
        self.subject = self.error.get("subject", "")
        self.verdict = self.error.get("verdict")
        self.status = status
        super().__init__(self.message or self.code)


class APIError(MyrmexError):
    """An error of the API itself (a token refused, a route not there), or of a call beyond the six functions."""


class PipelineError(APIError):
    """run_pipeline failed: the stage that stopped it is the error's op, the pipeline its subject."""


class ContainerBuildError(MyrmexError):
    """build_containers failed: a Dockerfile or build context problem, a failing step, a gate."""


class ContainerManagementError(MyrmexError):
    """manage_containers failed."""


class KubernetesError(MyrmexError):
    """orchestrate_kubernetes failed."""


class SecurityScanError(MyrmexError):
    """scan_container_security failed (or its severity threshold was reached)."""


class RegistryError(MyrmexError):
    """manage_container_registry failed."""


class OptimizationError(MyrmexError):
    """optimize_containers failed."""


_CLASSES = {
    "ContainerBuildError": ContainerBuildError,
    "ContainerManagementError": ContainerManagementError,
    "KubernetesError": KubernetesError,
    "SecurityScanError": SecurityScanError,
    "RegistryError": RegistryError,
    "OptimizationError": OptimizationError,
    "PipelineError": PipelineError,
}


# The API's own refusals: of the token, of its scope, of too many failed tokens.
_API_CODES = ("unauthorized", "forbidden", "rate_limited", "method_not_allowed")


def _raise(error, status=0, default=APIError):
    """Raises the exception class the error object names; for one it does not (a request refused before the
    function ran), APIError when the API itself refused it (a token, a scope), else the function's class."""
    error = error or {}
    cls = _CLASSES.get(error.get("class", ""))
    if cls is None:
        cls = APIError if error.get("code") in _API_CODES else default
    raise cls(error, status)


class Client:
    """A connection to one Myrmex server."""

    def __init__(self, url=None, token=None, timeout=60.0, job_timeout=3600.0):
        self.url = (url or os.environ.get("MYRMEX_URL") or "http://127.0.0.1:8765").rstrip("/")
        self.token = token if token is not None else os.environ.get("MYRMEX_TOKEN", "")
        self.timeout = timeout
        self.job_timeout = job_timeout

    # -- transport --------------------------------------------------------------------------------------------

    def _request(self, method, path, body=None, query=None, default=APIError):
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                error = json.loads(raw).get("error", {})
            except ValueError:
                error = {"code": "internal", "message": raw.decode(errors="replace")}
            _raise(error, e.code, default)
        except (urllib.error.URLError, OSError) as e:
            raise APIError({"code": "unavailable", "message": "%s: %s" % (self.url, getattr(e, "reason", e))}) from e

    def _document(self, method, path, body=None, query=None, default=APIError):
        """A request whose answer is a document (a report): its bytes, or the exception for its error."""
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=max(self.timeout, 180)) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            try:
                error = json.loads(e.read()).get("error", {})
            except ValueError:
                error = {}
            _raise(error, e.code, default)
        except (urllib.error.URLError, OSError) as e:
            raise APIError({"code": "unavailable", "message": "%s: %s" % (self.url, getattr(e, "reason", e))}) from e

    def _job(self, path, body, default):
        """Starts a job and follows it to its end: its result, or the exception for its error."""
        _, job = self._request("POST", path, body, default=default)
        return self.wait(job["id"], default)

    def wait(self, job_id, default=APIError):
        """Follows a job to its end: its result, or the exception for its error."""
        job = {"id": job_id}
        end = None
        for event, data in self._stream("/v1/jobs/%s/events" % job["id"]):
            if event == "end":
                end = data
        if end is None:  # the stream broke off: ask once more
            _, end = self._request("GET", "/v1/jobs/" + job["id"])
        if end.get("state") == "succeeded":
            return end.get("result")
        error = end.get("error") or {"code": "internal", "message": "job %s %s" % (job["id"], end.get("state"))}
        _raise(error, 0, default)

    def _stream(self, path):
        """Yields (event, data) of a Server-Sent Events stream until it ends."""
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.url + path, headers=headers)
        try:
            resp = urllib.request.urlopen(req, timeout=self.job_timeout)
        except urllib.error.HTTPError as e:
            try:
                error = json.loads(e.read()).get("error", {})
            except ValueError:
                error = {}
            _raise(error, e.code)
        with resp:
            event, data = "message", []
            for line in resp:
                line = line.decode().rstrip("\r\n")
                if line.startswith(":"):
                    continue
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)

    def events(self, job_id):
        """The progress events of a job, as they come, until it ends."""
        for event, data in self._stream("/v1/jobs/%s/events" % job_id):
            if event == "progress":
                yield data

    # -- the specification's six functions --------------------------------------------------------------------

    def build_containers(self, image_name, dockerfile_path="Dockerfile", context_path=".", build_args=None, **kwargs):
        """Builds an image on the server's BuildKit (paths are on the server's machine); returns the build's
        result (image_name, image_id, build_time, size_mb, layers, security_scan_passed, vulnerabilities_found,
        optimization_applied). kwargs: target, labels, tags, no_cache, scan, scan_threshold, push_to_registry,
        registry."""
        body = dict(kwargs, image_name=image_name, dockerfile_path=dockerfile_path, context_path=context_path)
        if build_args:
            body["build_args"] = build_args
        return self._job("/v1/builds", body, ContainerBuildError)

    def manage_containers(self, operation, container_name, config=None, **kwargs):
        """create, start, stop, remove, restart, logs, list or inspect; returns the specification's result.
        kwargs: force and volumes (remove), timeout (stop, restart: "10s"), tail and since (logs), all (list)."""
        name = urllib.parse.quote(container_name or "", safe="")
        E = ContainerManagementError
        if operation == "create":
            return self._request("POST", "/v1/containers", {"name": container_name, "config": config or {}}, default=E)[1]
        if operation in ("start", "stop", "restart"):
            return self._request("POST", "/v1/containers/%s/%s" % (name, operation), query=_query(kwargs, "timeout"), default=E)[1]
        if operation == "remove":
            return self._request("DELETE", "/v1/containers/" + name, query=_query(kwargs, "force", "volumes"), default=E)[1]
        if operation == "logs":
            return self._request("GET", "/v1/containers/%s/logs" % name, query=_query(kwargs, "tail", "since"), default=E)[1]
        if operation == "list":
            return self._request("GET", "/v1/containers", query=_query(kwargs, "all"), default=E)[1]
        if operation == "inspect":
            return self._request("GET", "/v1/containers/" + name, default=E)[1]
        raise ContainerManagementError({"code": "invalid_argument", "message": "unknown operation %r" % operation, "op": operation})

    def get_container_metrics(self, container_name, via=None):
        """The container's ContainerMetrics (a list of one sample). via: "cgroups" or "engine", where the
        server takes the readings (default: the cgroups when it can read them)."""
        path = "/v1/containers/%s/metrics" % urllib.parse.quote(container_name, safe="")
        q = _query({"via": via}, "via")
        return self._request("GET", path, query=q, default=ContainerManagementError)[1]["metrics"]

    def orchestrate_kubernetes(self, deployment_name, manifest_path, namespace="default", **kwargs):
        """Applies manifests (on the server's machine) to the server's cluster; returns the KubernetesDeployment.
        kwargs: replicas, image, images, labels, annotations, environment, create_namespace, dry_run, prune,
        wait, timeout ("3m")."""
        body = dict(kwargs, deployment_name=deployment_name, manifest_path=manifest_path, namespace=namespace)
        return self._job("/v1/kubernetes/deployments", body, KubernetesError)

    def scan_container_security(self, image_name, scan_type="full", **kwargs):
        """Scans an image; returns the SecurityScanResult. kwargs: severity_threshold, ignore_rules."""
        body = dict(kwargs, image_name=image_name, scan_type=scan_type)
        return self._job("/v1/scans", body, SecurityScanError)

    def manage_container_registry(self, operation, image_name, registry_url=None, **kwargs):
        """push, pull, copy (as jobs), tag, list or delete; returns the specification's result. kwargs: tags,
        destination. The server's own stored logins are used."""
        body = dict(kwargs, operation=operation, image_name=image_name)
        if registry_url:
            body["registry_url"] = registry_url
        if operation in ("push", "pull", "copy"):
            return self._job("/v1/registry", body, RegistryError)
        return self._request("POST", "/v1/registry", body, default=RegistryError)[1]

    def optimize_containers(self, image_name, optimization_type="size", **kwargs):
        """Optimizes an image; returns the result. kwargs: target_size (MB), layers_to_remove, probe (a dict:
        http, exec, run, healthcheck), no_upgrade, optimized_image."""
        body = dict(kwargs, image_name=image_name, optimization_type=optimization_type)
        return self._job("/v1/optimizations", body, OptimizationError)

    # -- beyond the six: deployments, saved registries, scan history, pipelines, policy ------------------------

    def generate_security_report(self, scan_result, format="pdf"):
        """Renders a scan result (what scan_container_security returned) as a security report: the document's
        bytes, in format pdf (printed by the server's headless Chromium), html or json. Needs a read token."""
        return self._document("POST", "/v1/reports/render", {"scan_result": scan_result, "format": format},
                              default=SecurityScanError)

    def security_report(self, image_name, format="pdf", **kwargs):
        """Reports on an image by name: the server scans it, holds it to its policy, verifies its signatures (keys:
        PEM texts), lists its evidence and reads its optimization, as a job; returns the document's bytes.
        kwargs: scan_type, severity_threshold, ignore_rules, gate, keys."""
        body = {"image_name": image_name}
        body.update({k: v for k, v in kwargs.items() if v is not None})
        _, job = self._request("POST", "/v1/reports", body, default=SecurityScanError)
        self.wait(job["id"], SecurityScanError)
        return self._document("GET", "/v1/reports/" + urllib.parse.quote(job["id"], safe=""), query={"format": format},
                              default=SecurityScanError)

    def list_kubernetes_deployments(self, namespace=None):
        """The Deployments, StatefulSets and DaemonSets of a namespace (default: the server's context's), each a
        KubernetesDeployment with its pods and services."""
        q = {"namespace": namespace} if namespace else None
        return self._request("GET", "/v1/kubernetes/deployments", query=q, default=KubernetesError)[1]["deployments"]

    def scale_kubernetes_deployment(self, deployment_name, replicas, namespace="default"):
        """Sets a Deployment's or StatefulSet's replicas; returns the KubernetesDeployment."""
        path = _deployment(namespace, deployment_name) + "/scale"
        return self._request("POST", path, {"replicas": replicas}, default=KubernetesError)[1]

    def rollback_kubernetes_deployment(self, deployment_name, namespace="default", to_revision=0):
        """Puts a deployment's pod template back to a revision (0: the previous one, as kubectl rollout undo);
        returns the KubernetesDeployment."""
        path = _deployment(namespace, deployment_name) + "/rollback"
        return self._request("POST", path, {"to_revision": to_revision}, default=KubernetesError)[1]

    def kubernetes_deployment_history(self, deployment_name, namespace="default"):
        """A deployment's revisions, oldest first: revision, images, created, current."""
        path = _deployment(namespace, deployment_name) + "/history"
        return self._request("GET", path, default=KubernetesError)[1]["revisions"]

    def list_registries(self):
        """The server's saved registries (ContainerRegistry), their logins masked."""
        return self._request("GET", "/v1/registries", default=RegistryError)[1]["registries"]

    def get_registry(self, name, catalog=True):
        """A saved registry, with its repositories read from its catalog unless catalog is False."""
        path = "/v1/registries/" + urllib.parse.quote(name, safe="")
        return self._request("GET", path, query=None if catalog else {"catalog": "false"}, default=RegistryError)[1]

    def list_registry_tags(self, name, repository):
        """A repository's tags in a saved registry (the RegistryResult of a list)."""
        path = "/v1/registries/%s/repositories/%s/tags" % (urllib.parse.quote(name, safe=""), urllib.parse.quote(repository, safe="/"))
        return self._request("GET", path, default=RegistryError)[1]

    def run_retention(self, name, repositories=None, apply=False):
        """Runs the retention policy saved with a registry, as a job: a plan (a dry run), or with apply=True the
        deletions too; returns its report (artifacts, kept, deleted)."""
        body = {"apply": bool(apply)}
        if repositories:
            body["repositories"] = list(repositories)
        return self._job("/v1/registries/%s/retention" % urllib.parse.quote(name, safe=""), body, RegistryError)

    def run_pipeline(self, file=None, pipeline=None, dir=None, skip=None):
        """Runs a pipeline as a job: a pipeline file on the server's machine (file, an absolute path), or the
        document itself (pipeline: YAML text, or a dict) with dir, the absolute path on the server's machine its
        relative paths are read from; skip: stages not to run (test, optimize, push, sign, deploy). Returns the
        run's result (success, stages, image_digest…); a failed run raises PipelineError."""
        return self._job("/v1/pipelines", _pipeline_body(file, pipeline, dir, skip), PipelineError)

    def check_pipeline(self, file=None, pipeline=None, dir=None, skip=None):
        """Checks a pipeline without running it; returns what each stage would do."""
        return self._request("POST", "/v1/pipelines/check", _pipeline_body(file, pipeline, dir, skip), default=PipelineError)[1]

    def scan_history(self, image=None, digest=None, limit=None):
        """The scans the server ran, newest first: of an image, of a digest, or all (findings by severity, the
        policy's verdict)."""
        q = {"image": image, "digest": digest, "limit": None if limit is None else str(limit)}
        return self._request("GET", "/v1/scans", query=q, default=SecurityScanError)[1]["scans"]

    def get_scan(self, scan_id):
        """A scan of the history, with its full SecurityScanResult under "result"."""
        return self._request("GET", "/v1/scans/" + urllib.parse.quote(scan_id, safe=""), default=SecurityScanError)[1]

    def get_policy(self):
        """The policy the server holds at its gates: set, gates, rules, policy."""
        return self._request("GET", "/v1/policy")[1]

    def evaluate_policy(self, image_name, gate=None):
        """Holds an image to the server's policy at a gate (default apply) without changing anything; returns the
        verdict (allowed, violations, warnings)."""
        body = {"image_name": image_name}
        if gate:
            body["gate"] = gate
        return self._request("POST", "/v1/policy/evaluate", body, default=SecurityScanError)[1]


def _deployment(namespace, name):
    return "/v1/kubernetes/deployments/%s/%s" % (urllib.parse.quote(namespace or "default", safe=""), urllib.parse.quote(name, safe=""))


def _pipeline_body(file, pipeline, dir, skip):
    body = {}
    if file:
        body["file"] = file
    if pipeline is not None:
        body["pipeline"] = pipeline if isinstance(pipeline, str) else json.dumps(pipeline)
    if dir:
        body["dir"] = dir
    if skip:
        body["skip"] = list(skip)
    return body


def _query(kwargs, *names):
    q = {}
    for n in names:
        if n in kwargs and kwargs[n] is not None:
            v = kwargs[n]
            q[n] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return q


_default = None


def _client():
    global _default
    if _default is None:
        _default = Client()
    return _default


def build_containers(image_name, dockerfile_path="Dockerfile", context_path=".", build_args=None, **kwargs):
    return _client().build_containers(image_name, dockerfile_path, context_path, build_args, **kwargs)


def manage_containers(operation, container_name, config=None, **kwargs):
    return _client().manage_containers(operation, container_name, config, **kwargs)


def orchestrate_kubernetes(deployment_name, manifest_path, namespace="default", **kwargs):
    return _client().orchestrate_kubernetes(deployment_name, manifest_path, namespace, **kwargs)


def scan_container_security(image_name, scan_type="full", **kwargs):
    return _client().scan_container_security(image_name, scan_type, **kwargs)


def manage_container_registry(operation, image_name, registry_url=None, **kwargs):
    return _client().manage_container_registry(operation, image_name, registry_url, **kwargs)


def optimize_containers(image_name, optimization_type="size", **kwargs):
    return _client().optimize_containers(image_name, optimization_type, **kwargs)


def generate_security_report(scan_result, format="pdf"):
    return _client().generate_security_report(scan_result, format)
