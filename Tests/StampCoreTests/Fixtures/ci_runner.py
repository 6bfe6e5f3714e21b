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

Every line a GitHub step prints (stdout and stderr) goes through the runner's workflow-command
parser as actions/runner's ActionCommand and ActionCommandManager.TryProcessCommand do it: a
line that, left-trimmed, starts `::NAME ...::DATA` (TryParseV2), else one holding `##[NAME ...]`
anywhere (the legacy TryParse), NAME a registered command; `::stop-commands::TOKEN` pauses the
processing until a command named TOKEN. Each command the runner would have acted on is listed
under "_commands" in the result, so a test sees an input that became a command.
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


REGISTERED = {"stop-commands", "set-env", "set-output", "save-state", "add-mask", "add-path", "add-matcher",
              "remove-matcher", "warning", "error", "notice", "debug", "group", "endgroup", "echo"}


class CommandLog:
    """The runner's command processing over a step's log lines (see the module's text)."""

    def __init__(self):
        self.commands, self.stop_token = [], None

    def name_of(self, line):
        registered = REGISTERED | ({self.stop_token.lower()} if self.stop_token else set())
        trimmed = line.lstrip()
        if trimmed.startswith("::"):
            end = trimmed.find("::", 2)
            if end >= 0:
                info = trimmed[2:end]
                name = info.split(" ", 1)[0]
                if name.lower() in registered:
                    return name, trimmed[end + 2:]
        at = line.find("##[")
        if at >= 0:
            rb = line.find("]", at)
            if rb >= 0:
                name = line[at + 3:rb].split(" ", 1)[0]
                if name.lower() in registered:
                    return name, line[rb + 1:]
        return None

    def line(self, text):
        found = self.name_of(text)
        if found is None:
            return
        name, data = found
        if self.stop_token is not None:
            if name.lower() == self.stop_token.lower():
                self.stop_token = None
            return
        if name.lower() == "stop-commands":
            self.stop_token = data
            return
        self.commands.append(text)


def github(action_yml, inputs):
    action = YAML(typ="safe").load(open(action_yml))
    assert action["runs"]["using"] == "composite", "a composite action"
    values = {k: str(v.get("default", "")) for k, v in (action.get("inputs") or {}).items()}
    for k, v in inputs.items():
        if k not in values:
            sys.exit(f"unknown input {k}")
        values[k] = v
    context = {"inputs": values, "github": {"action_repository": "", "action_ref": ""}, "steps": {}}
    log = CommandLog()
    for step in action["runs"]["steps"]:
        assert step.get("shell") == "bash", "every step says shell: bash"
        env = dict(os.environ)
        env.update({k: resolve(v, context) for k, v in (step.get("env") or {}).items()})
        env["GITHUB_ACTION_PATH"] = os.path.dirname(os.path.abspath(action_yml))
        fd, out = tempfile.mkstemp()
        os.close(fd)
        env["GITHUB_OUTPUT"] = out
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", resolve(step["run"], context)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = r.stdout.decode("utf-8", "replace")
        sys.stderr.write(text)
        for line in text.split("\n"):
            log.line(line)
        if r.returncode != 0:
            print(json.dumps({"_failed": step.get("name"), "_status": r.returncode, "_commands": log.commands}))
            sys.exit(f"step {step.get('name')} failed with {r.returncode}")
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": read_outputs(out)}
        os.unlink(out)
    outputs = {k: resolve(v["value"], context) for k, v in (action.get("outputs") or {}).items()}
    outputs["_commands"] = log.commands
    return outputs


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
