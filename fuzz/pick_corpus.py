# Usage: pick_corpus.py CONTROL_FILE OUT_DIR MAX — the MAX inputs that add the most coverage edges
# (then features), chosen greedily from a libFuzzer merge control file (see README.md).
import sys, os, shutil
ctl, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(ctl).read().split('\n')
n = int(lines[0]); paths = lines[2:2+n]
cov, ft = {}, {}
for l in lines[2+n:]:
    p = l.split()
    if not p: continue
    if p[0] == 'COV': cov[int(p[1])] = set(map(int, p[2:]))
    if p[0] == 'FT': ft[int(p[1])] = set(map(int, p[2:]))
total = set().union(*cov.values()) if cov else set()
have, hft, chosen = set(), set(), []
while len(chosen) < k:
    best = max(cov, key=lambda i: (len(cov[i]-have), len(ft.get(i,set())-hft), -os.path.getsize(paths[i])), default=None)
    if best is None or (not cov[best]-have and not ft.get(best,set())-hft): break
    chosen.append(best); have |= cov[best]; hft |= ft.get(best,set()); del cov[best]
os.makedirs(out, exist_ok=True)
for i in chosen:
    src = paths[i]; shutil.copy(src, os.path.join(out, os.path.basename(src)))
print(f"{len(chosen)} files, {len(have)}/{len(total)} edges")
