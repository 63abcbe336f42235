"""Myrmex's Python client: the specification's six functions over Myrmex's HTTP API (myrmex serve).

Standard library only. Point it at a server with MYRMEX_URL (default http://127.0.0.1:8765) and a token
with MYRMEX_TOKEN (myrmex serve token create), or make a Client yourself:

    from myrmex import Client, SecurityScanError
    c = Client("http://127.0.0.1:8765", token)
    result = c.scan_container_security("registry.example.com/team/web:1.4", scan_type="full")

Long operations (build, scan, push, pull, copy, optimize, apply) run as jobs on the server; the functions follow
each to its end and return its result, or raise the specification's exception for its error.
"""

from .client import (
    Client,
    MyrmexError,
    APIError,
    ContainerBuildError,
    ContainerManagementError,
    KubernetesError,
    SecurityScanError,
    RegistryError,
    OptimizationError,
    PipelineError,
    build_containers,
    manage_containers,
    orchestrate_kubernetes,
    scan_container_security,
    manage_container_registry,
    optimize_containers,
    generate_security_report,
)

__all__ = [
    "Client",
    "MyrmexError",
    "APIError",
    "ContainerBuildError",
    "ContainerManagementError",
    "KubernetesError",
    "SecurityScanError",
    "RegistryError",
    "OptimizationError",
    "PipelineError",
    "build_containers",
    "manage_containers",
    "orchestrate_kubernetes",
    "scan_container_security",
    "manage_container_registry",
    "optimize_containers",
    "generate_security_report",
]
