"""Run every install command the READMEs show, as written, in a fresh venv.

Issue 13: nothing of ours is on the package index, so each command must work
from a checkout. The commands are the ``python -m pip install ...`` lines of
the READMEs' code blocks (a line continued with a backslash is joined; a
trailing ``# comment`` is dropped); each runs from the repository root with
the venv's python. A command that names a placeholder (``/path/to``) is
shown, not run.
"""

import glob
import os
import re
import shlex
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["README.md", "plugins/README.md"] + sorted(glob.glob(os.path.join(ROOT, "plugins",
                                                                          "*", "README.md")))


def commands(path):
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if not line.startswith("python -m pip install"):
                continue
            line = line.split(" && ")[0]
            line = re.sub(r"\s+#.*$", "", line)
            found.append(line)
    return found


def main():
    venv = tempfile.mkdtemp(prefix="readme-installs-")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    seen = set()
    for path in FILES:
        path = os.path.relpath(path, ROOT) if os.path.isabs(path) else path
        for command in commands(path):
            if command in seen:
                continue
            seen.add(command)
            if "/path/to" in command:
                print("shown only (a placeholder): %s" % command)
                continue
            argv = shlex.split(command)
            argv[0] = python
            print("%s: %s" % (path, command), flush=True)
            done = subprocess.run(argv + ["-q"], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
            if done.returncode:  # the build backend's chatter only when it failed
                sys.stdout.write(done.stdout.decode("utf-8", "replace"))
                raise SystemExit("failed: %s" % command)
    out = subprocess.run([python, "-c", "import opstatus; print(opstatus.__version__)"],
                         cwd=tempfile.gettempdir(), check=True, stdout=subprocess.PIPE)
    print("installed opstatus", out.stdout.decode().strip(), "from", len(seen), "commands")


if __name__ == "__main__":
    main()
