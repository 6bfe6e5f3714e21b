"""A CRD's openAPIV3Schema made strict: every object that lists its properties refuses any other
(`additionalProperties: false`), unless the schema keeps unknown fields on purpose
(`x-kubernetes-preserve-unknown-fields`) or already says what other properties may be; the top
level stays as published (it leaves out metadata, which the API server owns). The API
server prunes unknown fields of a custom resource silently; a strict schema makes a misspelt or
misplaced field (one the controller would never read) an error in the tests.

  strict_schema.py IN.json OUT.json"""
import json
import sys


def strict(node, root=False):
    if isinstance(node, dict):
        # The top level leaves out apiVersion, kind and metadata, which the API server owns.
        if (
            not root
            and node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node


with open(sys.argv[1]) as f:
    schema = json.load(f)
with open(sys.argv[2], "w") as f:
    json.dump(strict(schema, root=True), f)
