"""The Python client against a real Myrmex server (server/python_test.go starts one and runs these).

Environment: MYRMEX_URL, MYRMEX_TOKEN (operate), MYRMEX_READ_TOKEN, MYRMEX_TEST_IMAGE (busybox with sh and sleep),
MYRMEX_TEST_CONTEXT (a build context whose Dockerfile builds), MYRMEX_TEST_REGISTRY (a plain-HTTP registry),
MYRMEX_TEST_MANIFESTS and MYRMEX_TEST_NAMESPACE (Kubernetes manifests and a namespace for a dry run).
"""

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
