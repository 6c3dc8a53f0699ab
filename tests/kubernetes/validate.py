#!/usr/bin/env python3
"""Validates Kubernetes YAML against the published OpenAPI schemas in tests/fixtures/kubernetes.

Usage: validate.py FILE_OR_DIR...   (a directory with a kustomization.yaml is rendered with
`kubectl kustomize` first; .tools/kubernetes-client's kubectl, or $KUBECTL)

Every document's apiVersion/kind must be one the schemas define (Kubernetes' own through
x-kubernetes-group-version-kind; KubeVirt's VirtualMachine and CDI's DataVolume by name), and it
must validate against that definition, made stricter than the published one in one way: an
object whose schema lists its properties may have no others (a misspelt field is an error, as
kubectl's own validation makes it), unless the schema says it preserves unknown fields.
Then every file goes through `kubectl create --dry-run=client -o yaml` (Debian's kubectl 1.20)
against a discovery server this script starts on 127.0.0.1: it serves /api and /apis as the
three published API descriptions declare them (each collection that accepts a POST, with its
kind and scope), so kubectl maps every document to a real resource of the real API and prints it
back. kubectl runs with --validate=false: its own validation needs the schema as protobuf; the
schema check above is the validation.
Prints one line per document; exits 1 when any file has a problem, naming it.
"""
import copy
import http.server
import json
import lzma
import os
import subprocess
import sys
import tempfile
import threading

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "kubernetes")
KUBECTL = os.environ.get(
    "KUBECTL", os.path.join(ROOT, ".tools", "kubernetes-client", "usr", "bin", "kubectl")
)
# (apiVersion, kind) -> (schema file, definition) for the CRDs, whose schemas carry no GVK.
CRDS = {
    ("kubevirt.io/v1", "VirtualMachine"): ("kubevirt", "v1.VirtualMachine"),
    ("cdi.kubevirt.io/v1beta1", "DataVolume"): ("cdi", "v1beta1.DataVolume"),
}


def load_schema(name):
    with lzma.open(os.path.join(FIXTURES, f"{name}-swagger.json.xz")) as fh:
        doc = json.load(fh)
    defs = doc["definitions"]
    for d in defs.values():
        strict(d)
    return {"definitions": defs}


def strict(schema):
    """No properties beyond the listed ones; int-or-string takes both."""
    if not isinstance(schema, dict):
        return
    if schema.get("format") == "int-or-string":
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "string"}, {"type": "integer"}]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    for v in schema.get("properties", {}).values():
        strict(v)
    if isinstance(schema.get("items"), dict):
        strict(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        strict(schema["additionalProperties"])


def registry():
    schemas = {name: load_schema(name) for name in ("kubernetes", "kubevirt", "cdi")}
    index = {}
    for name, d in schemas["kubernetes"]["definitions"].items():
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            index[(api, gvk["kind"])] = ("kubernetes", name)
    index.update(CRDS)
    return schemas, index


def documents(path):
    """(source name, document) of a file, or of a kustomization rendered by kubectl."""
    if os.path.isdir(path):
        out = subprocess.run(
            [KUBECTL, "kustomize", path], check=True, capture_output=True, text=True
        ).stdout
        return [(f"{path} (kustomize)", d) for d in yaml.safe_load_all(out) if d is not None]
    with open(path, encoding="utf-8") as fh:
        return [(path, d) for d in yaml.safe_load_all(fh) if d is not None]


def validate(path, schemas, index):
    problems = []
    docs = documents(path)
    if not docs:
        return [f"{path}: no YAML documents"]
    for where, doc in docs:
        if not isinstance(doc, dict):
            problems.append(f"{where}: a document is not a mapping")
            continue
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in index:
            problems.append(f"{where}: {key[0]}/{key[1]} is defined by none of the schemas")
            continue
        file, name = index[key]
        root = schemas[file]
        schema = copy.copy(root["definitions"][name])
        schema["definitions"] = root["definitions"]
        v = jsonschema.Draft4Validator(schema)
        errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for e in errors:
            at = ".".join(str(p) for p in e.absolute_path) or "(top)"
            problems.append(f"{where}: {key[1]} {doc.get('metadata', {}).get('name')}: {at}: {e.message}")
        if not errors:
            print(f"valid: {where}: {key[0]} {key[1]} {doc.get('metadata', {}).get('name')}")
    return problems


def resources():
    """{group/version: [(resource, kind, namespaced)]} of every collection that takes a POST."""
    found = {}
    for name in ("kubernetes", "kubevirt", "cdi"):
        with lzma.open(os.path.join(FIXTURES, f"{name}-swagger.json.xz")) as fh:
            doc = json.load(fh)
        for path, ops in doc["paths"].items():
            post = ops.get("post") if isinstance(ops, dict) else None
            if not post:
                continue
            parts = path.strip("/").split("/")
            if parts[0] == "api":
                gv, rest = parts[1], parts[2:]
            elif parts[0] == "apis" and len(parts) > 3:
                gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
            else:
                continue
            # CDI writes the parameter with its pattern: {namespace:[a-z0-9]...}.
            namespaced = (
                len(rest) == 3 and rest[0] == "namespaces" and rest[1].startswith("{namespace")
            )
            if not (len(rest) == 1 or namespaced) or "{" in rest[-1]:
                continue
            kind = post.get("x-kubernetes-group-version-kind", {}).get("kind")
            if kind is None:
                refs = [p.get("schema", {}).get("$ref", "") for p in post.get("parameters", [])]
                refs = [r for r in refs if r]
                if not refs:
                    continue
                kind = refs[0].rsplit(".", 1)[-1]
            found.setdefault(gv, {})[rest[-1]] = (kind, namespaced)
    return {gv: [(r, k, n) for r, (k, n) in sorted(rs.items())] for gv, rs in found.items()}


def discovery_server(res):
    """An HTTP server on 127.0.0.1 answering kubectl's discovery requests from `res`."""
    groups = {}
    for gv in res:
        if "/" in gv:
            g, v = gv.split("/")
            groups.setdefault(g, []).append(v)

    def resource_list(gv):
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": [
                {"name": r, "singularName": "", "namespaced": n, "kind": k,
                 "verbs": ["create", "get", "list"]}
                for r, k, n in res[gv]
            ],
        }

    def group(g, versions):
        vs = [{"groupVersion": f"{g}/{v}", "version": v} for v in sorted(versions)]
        return {"name": g, "versions": vs, "preferredVersion": vs[-1]}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?")[0].rstrip("/")
            body = None
            if path == "/api":
                body = {"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": []}
            elif path == "/apis":
                body = {"kind": "APIGroupList", "apiVersion": "v1",
                        "groups": [group(g, vs) for g, vs in sorted(groups.items())]}
            elif path == "/api/v1":
                body = resource_list("v1")
            elif path.startswith("/apis/") and path[len("/apis/"):] in res:
                body = resource_list(path[len("/apis/"):])
            if body is None:
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}')
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

        def handle(self):
            # A client that hung up mid-answer (see dry_run) is not a server error to print.
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def dry_run(path, server, cache):
    """`kubectl create --dry-run=client -o yaml` of a file (or a rendered kustomization):
    problems, or none when kubectl printed back every document."""
    docs = [d for _, d in documents(path)]
    if os.path.isdir(path):
        rendered = os.path.join(cache, "kustomized.yaml")
        with open(rendered, "w", encoding="utf-8") as fh:
            yaml.safe_dump_all(docs, fh)
        path = rendered
    url = f"http://127.0.0.1:{server.server_address[1]}"
    # kubectl fetches every group's resource list at once and has been seen (once, on a loaded
    # machine) to give up on some of them and then not recognize a kind: a discovery hiccup,
    # not a verdict on the file. Such a failure is retried with an empty discovery cache.
    for attempt in range(3):
        run = subprocess.run(
            [KUBECTL, "--server", url, "--cache-dir", os.path.join(cache, f"kube{attempt}"),
             "create", "--dry-run=client", "--validate=false", "-o", "yaml", "-f", path],
            capture_output=True, text=True,
        )
        if run.returncode == 0 or "unable to recognize" not in run.stderr:
            break
    if run.returncode != 0:
        return [f"{path}: kubectl create --dry-run=client failed: {run.stderr.strip()}"]
    back = [d for d in yaml.safe_load_all(run.stdout) if d is not None]
    items = back[0].get("items", back) if len(back) == 1 and back[0].get("kind") == "List" else back
    want = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    got = sorted((d["kind"], d["metadata"]["name"]) for d in items)
    if got != want:
        return [f"{path}: kubectl printed {got}, the file holds {want}"]
    print(f"kubectl create --dry-run=client: {path}: {len(got)} object(s)")
    return []


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    schemas, index = registry()
    server = discovery_server(resources())
    failed = False
    with tempfile.TemporaryDirectory() as cache:
        for path in argv[1:]:
            problems = validate(path, schemas, index)
            if not problems:
                problems = dry_run(path, server, cache)
            for p in problems:
                print(f"invalid: {p}", file=sys.stderr)
                failed = True
    server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
