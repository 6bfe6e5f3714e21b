"""Runs the shell steps of stamp's CI front doors as their platforms would, here, for the tests.

  ci_runner.py github ACTION_YML INPUTS_JSON   -> JSON of the action's outputs
  ci_runner.py gitlab TEMPLATE JOB VARS_JSON   -> JSON: the dotenv report's variables

GitHub: each step of a composite action runs with `bash --noprofile --norc -eo pipefail`, its
`env` and `${{ inputs.* }}` expressions resolved from the inputs given (else the defaults),
GITHUB_ACTION_PATH the action's folder and a fresh GITHUB_OUTPUT file; the action's outputs are
then resolved from the steps' outputs. GitLab: the job's variables (the template's, overridden
by those given) in the environment, its script lines run by `bash -e` in the working folder,
and the dotenv report read back. The rest of the environment (GITHUB_SHA, CI_COMMIT_SHA, ...)
is the caller's. Needs ruamel.yaml (check-jsonschema brings it).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

from ruamel.yaml import YAML

EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def resolve(text, context):
    def one(m):
        path = m.group(1).split(".")
        value = context
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return ""
            value = value[part]
        return str(value)
    return EXPR.sub(one, str(text))


def read_outputs(path):
    out, lines = {}, open(path).read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            i += 1
            body = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            out[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out


def github(action_yml, inputs):
    action = YAML(typ="safe").load(open(action_yml))
    assert action["runs"]["using"] == "composite", "a composite action"
    values = {k: str(v.get("default", "")) for k, v in (action.get("inputs") or {}).items()}
    for k, v in inputs.items():
        if k not in values:
            sys.exit(f"unknown input {k}")
        values[k] = v
    context = {"inputs": values, "github": {"action_repository": "", "action_ref": ""}, "steps": {}}
    for step in action["runs"]["steps"]:
        assert step.get("shell") == "bash", "every step says shell: bash"
        env = dict(os.environ)
        env.update({k: resolve(v, context) for k, v in (step.get("env") or {}).items()})
        env["GITHUB_ACTION_PATH"] = os.path.dirname(os.path.abspath(action_yml))
        fd, out = tempfile.mkstemp()
        os.close(fd)
        env["GITHUB_OUTPUT"] = out
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", resolve(step["run"], context)],
                           env=env, stdout=sys.stderr)
        if r.returncode != 0:
            sys.exit(f"step {step.get('name')} failed with {r.returncode}")
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": read_outputs(out)}
        os.unlink(out)
    return {k: resolve(v["value"], context) for k, v in (action.get("outputs") or {}).items()}


def gitlab(template, job, variables):
    doc = YAML(typ="safe").load(open(template))
    spec = doc[job]
    env = dict(os.environ)
    env.update({k: str(v) for k, v in (spec.get("variables") or {}).items()})
    env.update(variables)
    script = "\n".join(spec["script"])
    r = subprocess.run(["bash", "-e", "-c", script], env=env, stdout=sys.stderr)
    if r.returncode != 0:
        sys.exit(f"job {job} failed with {r.returncode}")
    dotenv = spec["artifacts"]["reports"]["dotenv"]
    report = dict(line.split("=", 1) for line in open(dotenv).read().splitlines() if line)
    missing = [p for p in spec["artifacts"].get("paths", []) if not os.path.exists(p)]
    if missing:
        sys.exit(f"artifacts missing: {missing}")
    return report


if __name__ == "__main__":
    if sys.argv[1] == "github":
        print(json.dumps(github(sys.argv[2], json.loads(sys.argv[3]))))
    else:
        print(json.dumps(gitlab(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
