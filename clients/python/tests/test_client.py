"""The Python client against a real Myrmex server (server/python_test.go starts one and runs these).

Environment: MYRMEX_URL, MYRMEX_TOKEN (operate), MYRMEX_READ_TOKEN, MYRMEX_TEST_IMAGE (busybox with sh and sleep),
MYRMEX_TEST_CONTEXT (a build context whose Dockerfile builds), MYRMEX_TEST_REGISTRY (a plain-HTTP registry, saved on
the server as MYRMEX_TEST_SAVED_REGISTRY with a retention policy), MYRMEX_TEST_MANIFESTS and MYRMEX_TEST_NAMESPACE
(Kubernetes manifests, a Deployment named myrmex-demo-web, and a namespace of the test's own).
"""

import json
import os
import time
import unittest
import uuid

import myrmex
from myrmex import Client

ENV = os.environ


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = Client(ENV["MYRMEX_URL"], ENV["MYRMEX_TOKEN"], timeout=120)
        self.name = "myrmex-py-" + uuid.uuid4().hex[:8]

    def tearDown(self):
        try:
            self.c.manage_containers("remove", self.name, force=True)
        except myrmex.ContainerManagementError:
            pass

    def test_manage_containers(self):
        image = ENV["MYRMEX_TEST_IMAGE"]
        res = self.c.manage_containers("create", self.name, {"image": image, "command": ["sh", "-c", "echo from-python; sleep 600"]})
        self.assertEqual(res["operation"], "create")
        self.assertTrue(res["success"])
        self.assertTrue(res["container_id"])
        res = self.c.manage_containers("start", self.name)
        self.assertEqual(res["status"], "running")
        logs = ""
        for _ in range(100):
            logs = self.c.manage_containers("logs", self.name, tail=5)["logs"]
            if "from-python" in logs:
                break
            time.sleep(0.1)
        self.assertIn("from-python", logs)
        metrics = self.c.get_container_metrics(self.name)
        self.assertEqual(metrics[0]["container_name"], self.name)
        self.assertIn("cpu_usage_percent", metrics[0])
        by_engine = self.c.get_container_metrics(self.name, via="engine")
        self.assertEqual(by_engine[0]["container_id"], metrics[0]["container_id"])
        with self.assertRaises(myrmex.ContainerManagementError) as cm:
            self.c.get_container_metrics(self.name, via="proc")
        self.assertEqual(cm.exception.code, "invalid_argument")
        self.assertEqual(cm.exception.status, 400)
        self.assertEqual(self.c.manage_containers("inspect", self.name)["status"], "running")
        names = [c["name"] for c in self.c.manage_containers("list", "")["containers"]]
        self.assertIn(self.name, names)
        self.assertEqual(self.c.manage_containers("stop", self.name, timeout="1s")["status"], "exited")
        self.assertTrue(self.c.manage_containers("remove", self.name)["success"])
        with self.assertRaises(myrmex.ContainerManagementError) as cm:
            self.c.manage_containers("inspect", self.name)
        self.assertEqual(cm.exception.code, "not_found")
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(myrmex.ContainerManagementError) as cm:
            self.c.manage_containers("create", self.name, {"image": ""})
        self.assertEqual(cm.exception.code, "invalid_argument")

    def test_scan_container_security(self):
        res = self.c.scan_container_security(ENV["MYRMEX_TEST_IMAGE"], scan_type="compliance")
        self.assertEqual(res["image_name"], ENV["MYRMEX_TEST_IMAGE"])
        self.assertIn("compliance_score", res)
        self.assertIsInstance(res["vulnerabilities"], list)
        with self.assertRaises(myrmex.SecurityScanError):
            self.c.scan_container_security("myrmex.local/nosuch:1", scan_type="compliance")
        with self.assertRaises(myrmex.SecurityScanError) as cm:  # refused before a job: the request itself
            self.c.scan_container_security(ENV["MYRMEX_TEST_IMAGE"], scan_type="deep")
        self.assertEqual(cm.exception.status, 400)
        self.assertEqual(cm.exception.code, "invalid_argument")

    def test_security_report(self):
        image = ENV["MYRMEX_TEST_IMAGE"]
        scan = self.c.scan_container_security(image, scan_type="compliance")
        pdf = self.c.generate_security_report(scan, format="pdf")
        self.assertTrue(pdf.startswith(b"%PDF-"))
        html = self.c.generate_security_report(scan, format="html").decode()
        self.assertIn("Content-Security-Policy", html)
        self.assertIn(image, html)
        doc = myrmex.Client(ENV["MYRMEX_URL"], ENV["MYRMEX_READ_TOKEN"]).generate_security_report(scan, format="json")
        self.assertEqual(json.loads(doc)["scan_result"]["image_name"], image)
        report = json.loads(self.c.security_report(image, format="json", scan_type="compliance"))
        self.assertEqual(report["image_name"], image)
        self.assertIn(report["verdict"], ("passed", "failed", "warned", "none"))
        with self.assertRaises(myrmex.SecurityScanError) as cm:
            self.c.generate_security_report({"image_name": image}, format="pdf")
        self.assertEqual(cm.exception.code, "invalid_argument")
        with self.assertRaises(myrmex.SecurityScanError) as cm:
            self.c.generate_security_report(scan, format="docx")
        self.assertEqual(cm.exception.status, 400)
        with self.assertRaises(myrmex.APIError) as cm:  # a read token renders, it does not scan
            myrmex.Client(ENV["MYRMEX_URL"], ENV["MYRMEX_READ_TOKEN"]).security_report(image, scan_type="compliance")
        self.assertEqual(cm.exception.status, 403)

    def test_build_containers(self):
        tag = "myrmex.local/py-build:" + uuid.uuid4().hex[:8]
        res = self.c.build_containers(tag, context_path=ENV["MYRMEX_TEST_CONTEXT"], scan="off")
        self.assertEqual(res["image_name"], tag)
        self.assertTrue(res["image_id"].startswith("sha256:"))
        self.assertGreater(res["layers"], 0)
        with self.assertRaises(myrmex.ContainerBuildError):
            self.c.build_containers(tag, dockerfile_path="Nosuch.Dockerfile", context_path=ENV["MYRMEX_TEST_CONTEXT"])

    def test_manage_container_registry(self):
        reg = ENV["MYRMEX_TEST_REGISTRY"]
        res = self.c.manage_container_registry("push", ENV["MYRMEX_TEST_IMAGE"], "http://" + reg, destination="py/app:1")
        self.assertTrue(res["success"])
        self.assertTrue(res["image_digest"].startswith("sha256:"))
        res = self.c.manage_container_registry("list", reg + "/py/app")
        self.assertEqual(res["tags"], ["1"])
        with self.assertRaises(myrmex.RegistryError) as cm:
            self.c.manage_container_registry("pull", reg + "/py/app:missing")
        self.assertEqual(cm.exception.code, "not_found")

    def test_orchestrate_kubernetes(self):
        d = self.c.orchestrate_kubernetes("myrmex-demo-web", ENV["MYRMEX_TEST_MANIFESTS"], ENV["MYRMEX_TEST_NAMESPACE"], dry_run=True)
        self.assertEqual(d["namespace"], ENV["MYRMEX_TEST_NAMESPACE"])
        self.assertTrue(d["dry_run"])
        with self.assertRaises(myrmex.KubernetesError):
            self.c.orchestrate_kubernetes("Not A Name", ENV["MYRMEX_TEST_MANIFESTS"])

    def test_manage_kubernetes_deployment(self):
        ns, manifests = ENV["MYRMEX_TEST_NAMESPACE"], ENV["MYRMEX_TEST_MANIFESTS"]
        self.c.orchestrate_kubernetes("myrmex-demo-web", manifests, ns, replicas=1, wait=True, timeout="2m")
        self.c.orchestrate_kubernetes("myrmex-demo-web", manifests, ns, replicas=1, image="myrmex.local/demo/app:2", wait=True, timeout="2m")
        names = [d["name"] for d in self.c.list_kubernetes_deployments(ns)]
        self.assertEqual(names, ["myrmex-demo-web"])
        d = self.c.scale_kubernetes_deployment("myrmex-demo-web", 2, ns)
        self.assertEqual(d["replicas"], 2)
        revisions = self.c.kubernetes_deployment_history("myrmex-demo-web", ns)
        self.assertEqual([r["images"]["app"] for r in revisions], ["myrmex.local/demo/app:1", "myrmex.local/demo/app:2"])
        self.assertTrue(revisions[-1]["current"])
        d = self.c.rollback_kubernetes_deployment("myrmex-demo-web", ns)
        self.assertEqual(d["image"], "myrmex.local/demo/app:1")
        with self.assertRaises(myrmex.KubernetesError) as cm:
            self.c.scale_kubernetes_deployment("nosuch", 1, ns)
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(myrmex.KubernetesError) as cm:
            self.c.scale_kubernetes_deployment("myrmex-demo-web", -1, ns)
        self.assertEqual(cm.exception.code, "invalid_argument")

    def test_saved_registries_and_retention(self):
        name = ENV["MYRMEX_TEST_SAVED_REGISTRY"]
        self.assertIn(name, [r["name"] for r in self.c.list_registries()])
        reg = self.c.get_registry(name, catalog=False)
        self.assertEqual(reg["url"], "http://" + ENV["MYRMEX_TEST_REGISTRY"])
        self.assertIsNotNone(reg["retention_policy"])
        report = self.c.run_retention(name)
        self.assertTrue(report["dry_run"])
        self.assertIn("artifacts", report)
        with self.assertRaises(myrmex.RegistryError) as cm:
            self.c.get_registry("nosuch")
        self.assertEqual(cm.exception.code, "not_found")
        with self.assertRaises(myrmex.RegistryError) as cm:
            self.c.run_retention("nosuch")
        self.assertEqual(cm.exception.status, 404)

    def test_run_pipeline(self):
        image = "myrmex.local/py-pipeline:test"
        doc = "version: 1\nname: py\nimage: %s\nbuild: {context: .}\nscan: {type: compliance}\n" % image
        check = self.c.check_pipeline(pipeline=doc, dir=ENV["MYRMEX_TEST_CONTEXT"])
        self.assertTrue(check["valid"])
        res = self.c.run_pipeline(pipeline=doc, dir=ENV["MYRMEX_TEST_CONTEXT"])
        self.assertTrue(res["success"])
        self.assertEqual([s["status"] for s in res["stages"]][:3], ["passed", "skipped", "passed"])
        scans = self.c.scan_history(image=image, limit=1)
        self.assertEqual(scans[0]["job_kind"], "pipeline")
        self.assertEqual(self.c.get_scan(scans[0]["id"])["result"]["image_name"], image)
        # A pipeline whose test fails stops at its test stage.
        failing = doc + "test:\n  run: {cmd: [sh, -c, 'exit 3']}\n"
        with self.assertRaises(myrmex.PipelineError) as cm:
            self.c.run_pipeline(pipeline=failing, dir=ENV["MYRMEX_TEST_CONTEXT"])
        self.assertEqual(cm.exception.op, "test")
        with self.assertRaises(myrmex.PipelineError) as cm:  # refused before a job
            self.c.run_pipeline(pipeline=doc, dir=ENV["MYRMEX_TEST_CONTEXT"], skip=["build"])
        self.assertEqual(cm.exception.status, 400)

    def test_policy(self):
        p = self.c.get_policy()
        self.assertFalse(p["set"])
        self.assertEqual(p["gates"]["apply"], "off")
        v = self.c.evaluate_policy(ENV["MYRMEX_TEST_IMAGE"], gate="create")
        self.assertTrue(v["allowed"])

    def test_tokens(self):
        with self.assertRaises(myrmex.APIError) as cm:
            Client(ENV["MYRMEX_URL"], "myx_wrong").manage_containers("list", "")
        self.assertEqual(cm.exception.status, 401)
        with self.assertRaises(myrmex.APIError) as cm:
            Client(ENV["MYRMEX_URL"], ENV["MYRMEX_READ_TOKEN"]).manage_containers("create", self.name, {"image": "x"})
        self.assertEqual(cm.exception.status, 403)
        self.assertEqual(cm.exception.code, "forbidden")

    def test_no_server(self):
        with self.assertRaises(myrmex.APIError) as cm:
            Client("http://127.0.0.1:9", "myx_x", timeout=5).manage_containers("list", "")
        self.assertEqual(cm.exception.code, "unavailable")

    def test_module_functions(self):
        # The module's functions use MYRMEX_URL and MYRMEX_TOKEN.
        res = myrmex.manage_containers("list", "")
        self.assertEqual(res["operation"], "list")


if __name__ == "__main__":
    unittest.main()
