#!/usr/bin/env python3
"""Embeds dockerfiles/*.Dockerfile into Sources/Templates/BuiltinTemplates.swift (make templates)."""
import os
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = ["// Generated from dockerfiles/*.Dockerfile by `make templates`; a test keeps them equal.",
       "public enum BuiltinTemplates {",
       "    public static let all: [String: String] = ["]
for name in sorted(os.listdir(os.path.join(root, "dockerfiles"))):
    if not name.endswith(".Dockerfile"):
        continue
    text = open(os.path.join(root, "dockerfiles", name), encoding="utf-8").read()
    if '"""#' in text:
        sys.exit(f"{name}: contains \"\"\"# and cannot be embedded")
    out.append(f'        "{name[:-len(".Dockerfile")]}": #"""')
    out.append(text + '\n"""#,')
out += ["    ]", "}", ""]
open(os.path.join(root, "Sources", "Templates", "BuiltinTemplates.swift"), "w", encoding="utf-8").write("\n".join(out))
