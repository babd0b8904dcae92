#!/usr/bin/env python3
"""The shape issue 32 asked the Rust code to keep, checked: no source file over
600 lines without its tests (its `#[cfg(test)] mod tests { ... }` block), no
function of the code over 100 lines (tests, benchmarks and test files aside:
a test reads best as one story), and no circle of `use crate::...` /
`use super::...` imports between the files of a crate.

    scripts/checks/code_shape.py [--max-file 600] [--max-fn 100] [ROOT]

Prints every breach and exits 1 if there is one; prints the largest file and
function either way. Run by scripts/test.sh.
"""
import argparse
import re
import sys
from pathlib import Path

CRATES = ["actor", "learner", "recorder", "tests", "common/wire", "common/env",
          "common/agent", "common/testkit"]


def strip(text):
    """The text with comments, strings and char literals blanked (lines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and text[i:i + 2] == "'\\"):
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x..|\\.|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(code, open_at):
    depth = 0
    for k in range(open_at, len(code)):
        if code[k] == "{":
            depth += 1
        elif code[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(code) - 1


def is_test_file(path):
    parts = path.parts
    return "tests" in parts[:-1] or "benches" in parts or path.name.endswith("tests.rs") or path.name == "tests.rs"


def test_blocks(code):
    """(start, end) of each `#[cfg(test)] mod ... { }` block."""
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", code):
        yield m.start(), block_end(code, code.index("{", m.start()))


def without_tests(code):
    """The code with its test blocks blanked (lines kept)."""
    for start, end in list(test_blocks(code)):
        code = code[:start] + re.sub(r"[^\n]", " ", code[start:end + 1]) + code[end + 1:]
    return code


def lines_without_tests(code):
    lines = code.count("\n") + (0 if code.endswith("\n") else 1)
    for start, end in test_blocks(code):
        lines -= code[start:end + 1].count("\n") + 1
    return lines


def functions(code):
    for m in re.finditer(r"\bfn\s+(\w+)", code):
        # The body's opening brace: the first `{` after the signature, unless a `;` (a declaration) comes first.
        k = m.end()
        while k < len(code) and code[k] not in "{;":
            k += 1
        if k >= len(code) or code[k] == ";":
            continue
        end = block_end(code, k)
        yield m.group(1), code[:m.start()].count("\n") + 1, code[m.start():end + 1].count("\n") + 1


def module_of(src_root, path):
    rel = path.relative_to(src_root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


def cycles(src_root, files):
    mods = {module_of(src_root, f): f for f in files}
    edges = {m: set() for m in mods}
    for m, f in mods.items():
        code = strip(f.read_text())
        code = re.split(r"#\[cfg\(test\)\]", code)[0]
        for use in re.finditer(r"\buse\s+(crate|super)::([\w:{}, \n*]+);", code):
            root, rest = use.group(1), use.group(2)
            base = [] if root == "crate" else m.split("::")[:-1] if m else []
            if root == "super" and f.name == "mod.rs":
                base = m.split("::")[:-1]
            for target in expand(rest):
                path = base + target
                while path and "::".join(path) not in mods:
                    path = path[:-1]
                t = "::".join(path)
                if path and t != m and t in mods and not m.startswith(t + "::") and not t.startswith(m + "::"):
                    edges[m].add(t)
    found, state = [], {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    return found


def expand(rest):
    rest = rest.replace("\n", " ").strip()
    m = re.match(r"([\w:]*?)::?\{(.*)\}$", rest)
    if m:
        prefix = [p for p in m.group(1).split("::") if p]
        items, depth, cur = [], 0, ""
        for ch in m.group(2):
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        items.append(cur)
        out = []
        for it in items:
            it = it.strip()
            if not it or it == "self":
                out.append(prefix)
                continue
            for sub in expand(it):
                out.append(prefix + sub)
        return out
    return [[p for p in rest.split("::") if p and p != "*" and p != "self"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-file", type=int, default=600)
    ap.add_argument("--max-fn", type=int, default=100)
    ap.add_argument("root", nargs="?", default=Path(__file__).resolve().parents[2])
    a = ap.parse_args()
    root = Path(a.root)
    breaches, biggest_file, biggest_fn = [], (0, ""), (0, "")
    for crate in CRATES:
        for sub in ("src", "tests", "benches"):
            d = root / crate / sub
            if not d.is_dir():
                continue
            files = sorted(d.rglob("*.rs"))
            for f in files:
                if sub != "src" or is_test_file(f.relative_to(root / crate)):
                    continue
                code = strip(f.read_text())
                rel = f.relative_to(root)
                n = lines_without_tests(code)
                biggest_file = max(biggest_file, (n, str(rel)))
                if n > a.max_file:
                    breaches.append(f"{rel}: {n} lines without its tests (at most {a.max_file})")
                for name, line, n in functions(without_tests(code)):
                    biggest_fn = max(biggest_fn, (n, f"{rel}:{line} {name}"))
                    if n > a.max_fn:
                        breaches.append(f"{rel}:{line}: fn {name} is {n} lines (at most {a.max_fn})")
            if sub == "src":
                for cycle in cycles(d, files):
                    breaches.append(f"{crate}/src: files import each other in a circle: {' -> '.join(cycle)}")
    print(f"largest file without its tests: {biggest_file[1]} ({biggest_file[0]} lines); "
          f"longest function: {biggest_fn[1]} ({biggest_fn[0]} lines)")
    for b in breaches:
        print("BREACH " + b)
    if breaches:
        print(f"{len(breaches)} breaches of the code's shape (issue 32)")
        return 1
    print("code shape: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
