#!/usr/bin/env python3
"""Lists the C++ functions longer than a limit (lines from the opening brace's line to the closing
brace's, both included) in src/ and include/, so that the rule "no function over N lines" is checked
rather than remembered.

    scripts/function_lengths.py [--max 60] [--allow FILE:FUNCTION ...] [ROOT]

A function is a brace block at namespace or class scope whose head (the text since the previous
`;`, `{` or `}` at that scope) has a parameter list and is not a class, struct, enum, namespace,
union or an initialiser (`= {`). Comments, strings and character literals are skipped; lambdas and
local classes count towards the function around them. Exit status 1 when a function not allowed is
over the limit, with each one named (file:line name length).
"""
import argparse
import os
import re
import sys

SCOPES = re.compile(r"\b(namespace|class|struct|enum|union)\b")


def strip(text):
    """Comments, strings and character literals replaced by spaces (newlines kept)."""
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
        elif c == 'R' and text.startswith('R"', i):  # raw string R"delim( ... )delim"
            k = text.find("(", i)
            delim = text[i + 2:k]
            j = text.find(")" + delim + '"', k)
            j = n if j < 0 else j + len(delim) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator 1'000
                out.append(" ")
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j, n - 1) + 1 - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, length in lines) of each function defined at namespace or class scope."""
    text = strip(open(path, encoding="utf-8", errors="replace").read())
    stack = []  # per open brace: "scope" (namespace/class/...), "function" or "block"
    head_start = 0
    found = []
    for i, c in enumerate(text):
        if c == "{":
            head = text[head_start:i]
            in_scope = all(kind == "scope" for kind, _, _ in stack)
            if not in_scope:
                stack.append(("block", i, ""))
            elif (m := SCOPES.search(head)) and "(" not in head[:m.start()]:  # not `f(enum class ...)`
                stack.append(("scope", i, ""))
            elif "(" in head and not re.search(r"=\s*$", head) and not re.search(r"\)\s*=", head):
                name = re.findall(r"([~\w:<>]+)\s*\(", head)
                stack.append(("function", i, name[0] if name else "?"))
            else:
                stack.append(("block", i, ""))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "function" and all(k == "scope" for k, _, _ in stack):
                    first = text.count("\n", 0, start) + 1
                    last = text.count("\n", 0, i) + 1
                    found.append((name, first, last - first + 1))
            head_start = i + 1
        elif c == ";" and all(kind == "scope" for kind, _, _ in stack):
            head_start = i + 1
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--max", type=int, default=60)
    ap.add_argument("--allow", nargs="*", default=[], help="FILE:FUNCTION pairs allowed to be longer")
    ap.add_argument("--list", action="store_true", help="list every function over the limit, allowed or not")
    args = ap.parse_args()
    allowed = set(args.allow)
    bad = 0
    for top in ("src", "include"):
        for d, _, files in sorted(os.walk(os.path.join(args.root, top))):
            for f in sorted(files):
                if not f.endswith((".cpp", ".hpp", ".h", ".cu")):
                    continue
                path = os.path.join(d, f)
                rel = os.path.relpath(path, args.root)
                for name, line, length in functions(path):
                    if length <= args.max:
                        continue
                    ok = f"{rel}:{name}" in allowed
                    if ok and not args.list:
                        continue
                    print(f"{rel}:{line}: {name}: {length} lines{' (allowed)' if ok else ''}")
                    bad += 0 if ok else 1
    if bad:
        print(f"{bad} function(s) over {args.max} lines", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
