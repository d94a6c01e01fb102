#!/usr/bin/python3
"""check_layers.py [ROOT] — the layering check: every #include in src/ follows the rules that
docs/ARCHITECTURE.md states in its ```layers block.

The block holds one rule a line:
    FOLDER: DEP DEP ...      files in src/FOLDER may include headers of src/DEP (and their own
                             folder's); a folder is ruled by the longest FOLDER that prefixes it,
                             so model/exec has its own rule and model (the top) another
    <HEADER>: FOLDER ...     only files in these folders may include the system header HEADER
"imgsim.h" (the public header) is open to every folder. The folder rules must form no cycle.
Prints each violation as file:line and exits 1 when there is one, 2 when the rules are broken.
"""
import os
import re
import sys

root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
arch = os.path.join(root, "docs", "ARCHITECTURE.md")
src = os.path.join(root, "src")


def fail_rules(msg):
    print("check_layers: %s: %s" % (arch, msg))
    sys.exit(2)


try:
    text = open(arch, encoding="utf-8").read()
except OSError as e:
    fail_rules(str(e))
m = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
if not m:
    fail_rules("no ```layers block")
folders, system = {}, {}
for n, line in enumerate(m.group(1).splitlines(), 1):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    if ":" not in line:
        fail_rules("layers line %d: expected 'FOLDER: DEPS'" % n)
    key, deps = line.split(":", 1)
    key, deps = key.strip(), deps.split()
    table = system if key.startswith("<") else folders
    if key in table:
        fail_rules("layers line %d: %s ruled twice" % (n, key))
    table[key] = deps


def rule_of(folder):
    """The longest ruled folder that is `folder` or a parent of it, or None."""
    parts = folder.split("/")
    for i in range(len(parts), 0, -1):
        k = "/".join(parts[:i])
        if k in folders:
            return k
    return None


for k, deps in folders.items():
    for d in deps:
        if d not in folders:
            fail_rules("%s may use %s, which has no rule" % (k, d))
for h, users in system.items():
    for u in users:
        if u not in folders:
            fail_rules("%s is open to %s, which has no rule" % (h, u))
# no cycles among the folder rules (depth-first search, three colours)
state = {}


def visit(k, path):
    state[k] = 1
    for d in folders[k]:
        if state.get(d) == 1:
            fail_rules("the rules have a cycle: %s" % " -> ".join(path + [k, d]))
        if d not in state:
            visit(d, path + [k])
    state[k] = 2


for k in folders:
    if k not in state:
        visit(k, [])

include = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
bad = 0
for dirpath, _, files in os.walk(src):
    for f in sorted(files):
        if not f.endswith((".c", ".h")):
            continue
        path = os.path.join(dirpath, f)
        rel = os.path.relpath(path, root)
        folder = os.path.relpath(dirpath, src)
        own = rule_of(folder)
        if own is None:
            print("%s: folder src/%s has no rule in docs/ARCHITECTURE.md's layers block" % (rel, folder))
            bad += 1
            continue
        for n, line in enumerate(open(path, encoding="utf-8", errors="replace"), 1):
            mm = include.match(line)
            if not mm:
                continue
            kind, name = mm.groups()
            if kind == "<":
                users = system.get("<%s>" % name)
                if users is not None and own not in users:
                    print("%s:%d: src/%s may not include <%s> (open to: %s)" % (rel, n, own, name, " ".join(users)))
                    bad += 1
                continue
            if name == "imgsim.h":
                continue
            target = os.path.dirname(name) or folder  # a bare name is the including file's folder
            if not os.path.isfile(os.path.join(src, name)) and not os.path.isfile(os.path.join(dirpath, name)):
                continue  # not one of ours (a generated or system header in quotes)
            tk = rule_of(target)
            if tk is None:
                print("%s:%d: \"%s\" is in a folder with no rule" % (rel, n, name))
                bad += 1
            elif tk != own and tk not in folders[own]:
                print("%s:%d: src/%s may not include \"%s\" (src/%s may use: %s)"
                      % (rel, n, own, name, own, " ".join(folders[own]) or "nothing"))
                bad += 1
if bad:
    print("check_layers: %d forbidden include%s (rules: docs/ARCHITECTURE.md, ```layers)" % (bad, "" if bad == 1 else "s"))
    sys.exit(1)
print("check_layers: every include in src/ follows the %d folder rules" % len(folders))
