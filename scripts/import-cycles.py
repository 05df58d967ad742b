#!/usr/bin/env python3
"""Import cycles between the modules (files) of server/src, outside tests.

Module A uses module B when A's code (comments and `#[cfg(test)]` parts left out) names a path
`crate::…`, `super::…` or `self::…` that resolves to B, or to an item inside B. Prints every
group of modules that reach each other (a strongly connected group of more than one) and exits 1
when there is one. Usage: scripts/import-cycles.py [server/src]"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'server/src'
mods = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)[:-3].split(os.sep)
        if rel[-1] in ('mod', 'lib', 'main'): rel = rel[:-1]
        if rel and rel[-1] == 'tests': continue
        mods[tuple(rel)] = p
def resolve(path):
    # longest prefix that is a module
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods: return tuple(path[:n])
    return None
edges = {m: set() for m in mods}
for m, p in mods.items():
    text = open(p).read()
    text = text.split('#[cfg(test)]')[0]
    text = re.sub(r'//[^\n]*', '', text)
    is_dir = os.path.basename(p) == 'mod.rs' or os.path.basename(p) == 'lib.rs'
    for mt in re.finditer(r'\b(crate|super(?:::super)*|self)::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*|\{)', text):
        head, rest = mt.group(1), mt.group(2)
        segs = [s for s in rest.split('::') if s and s != '{']
        if head == 'crate': base = []
        elif head == 'self': base = list(m) if is_dir else list(m[:-1])
        else:
            ups = head.count('super')
            base = list(m) if is_dir else list(m[:-1])
            base = base[:len(base)-ups] if ups <= len(base) else []
        target = resolve(base + segs)
        if target and target != m:
            edges[m].add(target)
# Tarjan
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        sccs.append(c)
for v in mods:
    if v not in index: strong(v)
bad = [c for c in sccs if len(c) > 1]
for c in bad:
    print(len(c), sorted('::'.join(x) or 'crate' for x in c))
print(f"import cycles: {len(bad)} groups among {len(mods)} modules")
sys.exit(1 if bad else 0)
