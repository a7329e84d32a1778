"""The project's git state and its diff, read with a few git calls (standard library only).

`state(dir)` answers what `git status` and `git log` would tell a user: branch, upstream,
ahead/behind, HEAD, each changed file with its added/removed line counts, the last commits.
`diff(dir, file, base, max_bytes)` is the unified diff of the working tree against a base,
untracked files shown as additions, cut at ``max_bytes`` with a flag that says so.

No repository, an empty one (no commits yet) and a detached HEAD are states, not errors;
only what the caller asked wrongly (a file outside the repository, a base git does not
know) raises BadRequest.
"""

from __future__ import annotations

import os
import subprocess
from typing import Dict, List, Optional, Tuple

DEFAULT_COMMITS = 10
DEFAULT_MAX_BYTES = 512 * 1024
# The empty tree: what an empty repository's files are compared with.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
MAX_FILES = 2000  # files listed; the totals count them all
UNTRACKED_LIMIT = 2000  # counting lines of more untracked files than this is not worth the wait
COUNT_LIMIT = 8 * 1024 * 1024  # an untracked file larger than this is not read to count its lines


class BadRequest(ValueError):
    pass


class Git:
    def __init__(self, directory: str):
        self.directory = directory

    def run(self, *args: str, ok: Tuple[int, ...] = (0,)) -> Tuple[int, bytes, bytes]:
        # core.quotepath off: names as they are; no pager, no colour, no locks for a read.
        cmd = ["git", "-c", "core.quotepath=off", "-c", "color.ui=false", "--no-optional-locks", *args]
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        proc = subprocess.run(cmd, cwd=self.directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=env)
        if proc.returncode not in ok:
            raise GitError(proc.stderr.decode("utf-8", "replace").strip() or "git %s failed" % args[0])
        return proc.returncode, proc.stdout, proc.stderr


class GitError(RuntimeError):
    pass


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _directory(directory: Optional[str]) -> str:
    path = os.path.abspath(os.path.expanduser(directory or "~"))
    if not os.path.isdir(path):
        raise BadRequest("directory %s does not exist" % path)
    return path


def _toplevel(directory: str) -> Optional[str]:
    """The repository's work tree holding ``directory``, or None when it is in none."""
    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=directory, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        error = _text(proc.stderr)
        if "dubious ownership" in error:  # a repository, but another user's: say so, not "no repository"
            raise GitError(error.strip().splitlines()[0])
        return None
    return _text(proc.stdout).strip() or None


# --------------------------------------------------------------------------- status


def _parse_status(raw: bytes) -> Tuple[Dict[str, object], List[Dict[str, object]]]:
    """`git status --porcelain=v2 --branch -z`: the branch headers and one entry per file."""
    branch: Dict[str, object] = {"head": None, "oid": None, "upstream": None, "ahead": None, "behind": None}
    files: List[Dict[str, object]] = []
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields):
        entry = _text(fields[i])
        i += 1
        if not entry:
            continue
        if entry.startswith("# "):
            key, _, value = entry[2:].partition(" ")
            if key == "branch.oid":
                branch["oid"] = None if value == "(initial)" else value
            elif key == "branch.head":
                branch["head"] = None if value == "(detached)" else value
            elif key == "branch.upstream":
                branch["upstream"] = value
            elif key == "branch.ab":
                ahead, behind = value.split()
                branch["ahead"], branch["behind"] = int(ahead), -int(behind)
        elif entry[0] == "1":  # 1 XY sub mH mI mW hH hI path
            parts = entry.split(" ", 8)
            files.append(_entry(parts[1], parts[8]))
        elif entry[0] == "2":  # 2 XY sub mH mI mW hH hI Xscore path, then origPath in the next field
            parts = entry.split(" ", 9)
            item = _entry(parts[1], parts[9])
            item["status"] = "renamed" if parts[8].startswith("R") else "copied"
            item["oldPath"] = _text(fields[i])
            i += 1
            files.append(item)
        elif entry[0] == "u":  # u XY sub m1 m2 m3 mW h1 h2 h3 path
            item = _entry("UU", entry.split(" ", 10)[10])
            item["status"] = "conflicted"
            files.append(item)
        elif entry[0] == "?":
            files.append({"path": entry[2:], "status": "untracked", "staged": False})
    return branch, files


def _entry(xy: str, path: str) -> Dict[str, object]:
    index, tree = xy[0], xy[1]
    code = tree if tree != "." else index
    status = {"M": "modified", "T": "modified", "A": "added", "D": "deleted", "R": "renamed",
              "C": "copied"}.get(code, "modified")
    if index == "A" and tree == "D":
        status = "deleted"  # added then removed from the work tree: gone for the user
    return {"path": path, "status": status, "staged": index != "."}


def _parse_numstat(raw: bytes) -> Dict[str, Tuple[Optional[int], Optional[int]]]:
    """`git diff --numstat -z`: (added, removed) per path; (None, None) for a binary file."""
    counts: Dict[str, Tuple[Optional[int], Optional[int]]] = {}
    fields = raw.split(b"\0")
    i = 0
    while i < len(fields):
        entry = _text(fields[i])
        i += 1
        if not entry:
            continue
        added, removed, path = entry.split("\t", 2)
        if path == "":  # a rename: the old and new paths follow in their own fields
            path = _text(fields[i + 1])
            i += 2
        counts[path] = (None, None) if added == "-" else (int(added), int(removed))
    return counts


def _count_file(path: str) -> Tuple[Optional[int], bool]:
    """Lines of an untracked file, and whether it is binary (a NUL in its first 8000 bytes, as git)."""
    try:
        if os.path.islink(path):
            return 1, False
        if os.path.getsize(path) > COUNT_LIMIT:
            with open(path, "rb") as f:
                return None, b"\0" in f.read(8000)
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None, False
    if b"\0" in data[:8000]:
        return None, True
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0), False


def _commits(git: Git, count: int) -> List[Dict[str, object]]:
    _, out, _ = git.run("log", "-n", str(count), "-z", "--format=%H%x1f%an%x1f%aI%x1f%s")
    commits = []
    for record in out.split(b"\0"):
        if not record.strip():
            continue
        sha, author, when, subject = _text(record).split("\x1f", 3)
        commits.append({"sha": sha, "author": author, "date": when, "subject": subject})
    return commits


def state(directory: Optional[str] = None, commits: int = DEFAULT_COMMITS) -> Dict[str, object]:
    """The git state of the repository holding ``directory`` (default: home)."""
    if commits < 0:
        raise BadRequest("commits must be 0 or more")
    directory = _directory(directory)
    answer: Dict[str, object] = {"directory": directory, "repository": False, "root": None, "state": "no_repository",
                                 "message": None, "branch": None, "upstream": None, "ahead": None, "behind": None,
                                 "head": None, "files": [], "totals": {"files": 0, "added": 0, "removed": 0},
                                 "commits": []}
    root = _toplevel(directory)
    if root is None:
        answer["message"] = "%s is not in a git repository" % directory
        return answer
    git = Git(root)
    answer.update(repository=True, root=root)
    _, out, _ = git.run("status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    branch, files = _parse_status(out)
    answer.update(branch=branch["head"], upstream=branch["upstream"], ahead=branch["ahead"], behind=branch["behind"])
    empty = branch["oid"] is None
    if empty:
        answer.update(state="empty", message="the repository has no commits yet")
    elif branch["head"] is None:
        answer.update(state="detached", message="HEAD is detached at %s" % str(branch["oid"])[:12])
    else:
        answer["state"] = "branch"
    if not empty:
        last = _commits(git, max(commits, 1))  # the first is HEAD: one git call for both
        answer["head"] = {"sha": branch["oid"], "subject": last[0]["subject"] if last else ""}
        answer["commits"] = last[:commits]

    tracked = [f for f in files if f["status"] != "untracked"]
    counts: Dict[str, Tuple[Optional[int], Optional[int]]] = {}
    if tracked:
        # Staged and unstaged together against HEAD: what the agent changed since the last commit.
        _, out, _ = git.run("diff", "--numstat", "-z", "-M", EMPTY_TREE if empty else "HEAD", "--")
        counts = _parse_numstat(out)
    untracked_seen = 0
    for f in files:
        if f["status"] == "untracked":
            untracked_seen += 1
            lines, binary = _count_file(os.path.join(root, str(f["path"]))) if untracked_seen <= UNTRACKED_LIMIT \
                else (None, False)
            f.update(added=lines, removed=0 if lines is not None else None, binary=binary)
        else:
            added, removed = counts.get(str(f["path"]), (0, 0))
            f.update(added=added, removed=removed, binary=added is None)
    answer["files"] = files[:MAX_FILES]
    answer["totals"] = {"files": len(files), "added": sum(int(f["added"] or 0) for f in files),
                        "removed": sum(int(f["removed"] or 0) for f in files)}
    if len(files) > MAX_FILES:
        answer["message"] = "%d changed files; the first %d are listed" % (len(files), MAX_FILES)
    if not files and answer["message"] is None:
        answer["message"] = "nothing changed since the last commit"
    return answer


# --------------------------------------------------------------------------- diff


def _inside(root: str, directory: str, file: str) -> str:
    """``file`` (relative to the asked directory, or absolute) as a path relative to the root."""
    joined = os.path.join(directory, file)
    # The parent resolved, the name kept: a symlink in the repository is its own file.
    path = os.path.join(os.path.realpath(os.path.dirname(joined)), os.path.basename(joined))
    if os.path.basename(joined) in ("", ".", ".."):
        path = os.path.realpath(joined)
    real_root = os.path.realpath(root)
    if path != real_root and not path.startswith(real_root + os.sep):
        raise BadRequest("file %s is outside the repository %s" % (file, root))
    return os.path.relpath(path, real_root)


def _untracked_diff(root: str, path: str) -> Tuple[str, bool]:
    """A new file as git shows an addition; (text, binary)."""
    full = os.path.join(root, path)
    lines, binary = _count_file(full)
    if binary or lines is None:
        return ("diff --git a/%s b/%s\nnew file mode 100644\nBinary files /dev/null and b/%s differ\n"
                % (path, path, path)), True
    if os.path.islink(full):
        body = [os.readlink(full) + "\n"]
    else:
        with open(full, "rb") as f:
            body = _text(f.read()).splitlines(True)
    out = ["diff --git a/%s b/%s\n" % (path, path), "new file mode 100644\n", "--- /dev/null\n", "+++ b/%s\n" % path]
    if body:
        out.append("@@ -0,0 +1%s @@\n" % ("" if len(body) == 1 else ",%d" % len(body)))
        for line in body:
            out.append("+" + line if line.endswith("\n") else "+" + line + "\n\\ No newline at end of file\n")
    return "".join(out), False


def _binary_paths(text: str) -> List[str]:
    found = []
    for line in text.splitlines():
        if line.startswith("Binary files ") and line.endswith(" differ"):
            pair = line[len("Binary files "):-len(" differ")]
            new = pair.split(" and ", 1)[-1]
            old = pair.split(" and ", 1)[0]
            name = new if new != "/dev/null" else old
            found.append(name[2:] if name[:2] in ("a/", "b/") else name)
    return found


def diff(directory: Optional[str] = None, file: Optional[str] = None, base: Optional[str] = None,
         max_bytes: int = DEFAULT_MAX_BYTES) -> Dict[str, object]:
    if max_bytes <= 0:
        raise BadRequest("max-bytes must be more than 0")
    directory = _directory(directory)
    answer: Dict[str, object] = {"directory": directory, "repository": False, "root": None, "file": file,
                                 "base": base or "HEAD", "diff": "", "bytes": 0, "truncated": False,
                                 "binary": [], "files": 0, "message": None}
    root = _toplevel(directory)
    if root is None:
        if file is not None or base is not None:
            raise BadRequest("%s is not in a git repository" % directory)
        answer["message"] = "%s is not in a git repository" % directory
        return answer
    answer.update(repository=True, root=root)
    git = Git(root)
    rel = _inside(root, directory, file) if file is not None else None
    has_head = git.run("rev-parse", "--verify", "-q", "HEAD", ok=(0, 1))[0] == 0
    if base is None:
        against = "HEAD" if has_head else EMPTY_TREE
        if not has_head:
            answer["message"] = "the repository has no commits yet: every file is new"
    else:
        if base.startswith("-"):
            raise BadRequest("base %r is not a revision" % base)
        code, out, _ = git.run("rev-parse", "--verify", "-q", base + "^{commit}", ok=(0, 1))
        if code != 0:
            raise BadRequest("base %r is not a commit in %s" % (base, root))
        against = _text(out).strip()
    if rel is not None:
        tracked = git.run("ls-files", "--error-unmatch", "--", rel, ok=(0, 1))[0] == 0
        in_base = git.run("cat-file", "-e", "%s:%s" % (against, rel), ok=(0, 128))[0] == 0 \
            if against != EMPTY_TREE else False
        exists = os.path.lexists(os.path.join(root, rel))
        if not (tracked or in_base or exists):
            raise BadRequest("file %s is not in the repository's work tree or in %s" % (file, answer["base"]))
    pathspec = ["--", rel] if rel is not None else ["--"]
    _, out, _ = git.run("diff", "--no-color", "--no-ext-diff", "-M", against, *pathspec)
    text = _text(out)
    _, untracked_raw, _ = git.run("ls-files", "--others", "--exclude-standard", "-z", *pathspec)
    binary = _binary_paths(text)
    parts = [text]
    for path in (p for p in _text(untracked_raw).split("\0") if p):
        added, is_binary = _untracked_diff(root, path)
        parts.append(added)
        if is_binary:
            binary.append(path)
    full = "".join(parts)
    encoded = full.encode("utf-8")
    answer["files"] = full.count("diff --git ") if full.startswith("diff --git ") or "\ndiff --git " in full else 0
    if len(encoded) > max_bytes:
        cut = encoded[:max_bytes].decode("utf-8", "ignore")
        cut = cut[:cut.rfind("\n") + 1] if "\n" in cut else cut  # whole lines only
        answer.update(diff=cut, truncated=True,
                      message="the diff is %d bytes; the first %d are shown" % (len(encoded), len(cut.encode())))
    else:
        answer["diff"] = full
    answer["bytes"] = len(encoded)
    answer["binary"] = binary
    if not full and answer["message"] is None:
        answer["message"] = "no changes against %s" % answer["base"]
    return answer
