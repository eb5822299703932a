#!/usr/bin/env python3
"""`make k8s-check`: renders every overlay under k8s/overlays with `kubectl kustomize`, validates
every resource offline against the Kubernetes JSON schemas in strict mode (unknown fields are
errors, and so is a kind or apiVersion the schemas do not know), then checks what the manifests
promise: probes, resources, drain, a PodDisruptionBudget and Service per role, headless services,
the migrations Job, and at least two replicas of every role in prod.

Usage: check.py [--kubernetes-version 1.30 ...] [overlay dir ...]
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes_validate import utils as schemas

K8S = Path(__file__).resolve().parent
# The oldest version the manifests support (native gRPC probes, matchLabelKeys, PDB eviction
# policy) and the newest the schemas know.
DEFAULT_VERSIONS = ["1.30", schemas.major_minor(schemas.latest_version())]
# Overlays that promise replicas; any other overlay needs one of each role.
MIN_REPLICAS = {"prod": 2}
ROLES = ["gateway", "lead", "context", "analysis", "telephony", "notification"]
REQUIRED_API = {
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
}


def kubectl() -> str:
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if found:
        return found
    # `make k8s-check` installs one into the virtualenv when the machine has none.
    bundled = Path(sys.prefix) / "bin" / "kubectl"
    if bundled.exists():
        return str(bundled)
    sys.exit("kubectl not found: install it, or set KUBECTL")


def render(overlay: Path) -> list:
    result = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise CheckFailed([f"kubectl kustomize failed:\n{result.stderr.strip()}"])
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class CheckFailed(Exception):
    def __init__(self, errors):
        super().__init__("\n".join(errors))
        self.errors = errors


def name(resource: dict) -> str:
    return f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"


def validate(resources: list, versions: list) -> list:
    errors = []
    for resource in resources:
        for version in versions:
            try:
                schemas.validate(resource, version, strict=True)
            except schemas.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                errors.append(f"{name(resource)} (Kubernetes {version}): {path}: {e.message}")
            except schemas.SchemaNotFoundError as e:
                errors.append(f"{name(resource)}: {e.message}")
        wanted = REQUIRED_API.get(resource.get("kind"))
        if wanted and resource.get("apiVersion") != wanted:
            errors.append(f"{name(resource)}: apiVersion must be {wanted}")
    return errors


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_promises(resources: list, min_replicas: int) -> list:
    errors = []
    by_kind = {}
    for resource in resources:
        by_kind.setdefault(resource["kind"], []).append(resource)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    if sorted(deployments) != sorted(ROLES):
        errors.append(f"expected one Deployment per role {ROLES}, found {sorted(deployments)}")
    images = set()
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in by_kind.get("HorizontalPodAutoscaler", [])
    }
    for role, deployment in deployments.items():
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"].get("labels", {})
        where = f"Deployment/{role}"
        replicas = hpas[role]["spec"].get("minReplicas", 1) if role in hpas else spec.get("replicas", 1)
        if replicas < min_replicas:
            errors.append(f"{where}: {replicas} replica(s), this overlay promises {min_replicas}")
        if "terminationGracePeriodSeconds" not in pod:
            errors.append(f"{where}: no terminationGracePeriodSeconds")
        for container in pod["containers"]:
            images.add(container["image"])
            args = container.get("args", [])
            if args != ["serve", role]:
                errors.append(f"{where}: runs {args}, expected ['serve', '{role}']")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    errors.append(f"{where}: no {probe}")
                elif role != "gateway" and "grpc" not in container[probe]:
                    errors.append(f"{where}: {probe} should be a native grpc probe")
            resources_ = container.get("resources", {})
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources_.get(part, {})):
                    errors.append(f"{where}: resources.{part} needs cpu and memory")
            if "preStop" not in container.get("lifecycle", {}):
                errors.append(f"{where}: no preStop hook to drain")
        if not any(
            selects(p["spec"]["selector"].get("matchLabels"), labels)
            for p in by_kind.get("PodDisruptionBudget", [])
        ):
            errors.append(f"{where}: no PodDisruptionBudget selects its pods")
        services = [
            s for s in by_kind.get("Service", []) if selects(s["spec"].get("selector"), labels)
        ]
        if not services:
            errors.append(f"{where}: no Service selects its pods")
        elif role != "gateway" and any(s["spec"].get("clusterIP") != "None" for s in services):
            errors.append(f"{where}: its Service must be headless (clusterIP: None)")
    if "gateway" not in hpas and min_replicas > 1:
        errors.append("no HorizontalPodAutoscaler for the gateway")
    jobs = [
        j for j in by_kind.get("Job", [])
        if j["spec"]["template"]["spec"]["containers"][0].get("args") == ["migrate"]
    ]
    if len(jobs) != 1:
        errors.append("expected one Job running `callmesh migrate`")
    else:
        images.add(jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"])
    if len(images) != 1:
        errors.append(f"every role should run one image, found {sorted(images)}")
    if not by_kind.get("NetworkPolicy"):
        errors.append("no NetworkPolicy")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", "--kubernetes-version", action="append", dest="versions")
    parser.add_argument("overlays", nargs="*", type=Path)
    args = parser.parse_args()
    versions = args.versions or DEFAULT_VERSIONS
    overlays = args.overlays or sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())

    failed = False
    for overlay in overlays:
        try:
            resources = render(overlay)
            errors = validate(resources, versions)
            errors += check_promises(resources, MIN_REPLICAS.get(overlay.name, 1))
        except CheckFailed as e:
            errors = e.errors
        label = os.path.relpath(overlay, K8S)
        if errors:
            failed = True
            print(f"FAIL {label}")
            for error in errors:
                print(f"  {error}")
        else:
            print(f"ok   {label}: {len(resources)} resources, valid against Kubernetes "
                  f"{', '.join(versions)} (strict)")

    example = K8S / "secret.example.yaml"
    errors = validate([d for d in yaml.safe_load_all(example.read_text()) if d], versions)
    for error in errors:
        print(f"FAIL secret.example.yaml: {error}")
    failed |= bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
