#!/usr/bin/env python3
"""Counts the exporter crate's non-test lines (issue 15's measure): every line of src/
less #[cfg(test)] mod blocks and the test-only files tests.rs, testing.rs, layers.rs.
Usage: scripts/count-lines.py [DIR] [-f]   (-f: the 40 biggest files too)."""
import os,re,sys
root=sys.argv[1] if len(sys.argv)>1 else 'src'
def strip_tests(text):
    lines=text.split('\n'); out=[]; i=0
    while i<len(lines):
        l=lines[i]
        if l.strip()=='#[cfg(test)]' and i+1<len(lines) and re.match(r'\s*(pub(\(crate\))? )?mod \w+\s*\{',lines[i+1]):
            depth=0; j=i+1
            while j<len(lines):
                depth+=lines[j].count('{')-lines[j].count('}')
                j+=1
                if depth<=0: break
            i=j; continue
        if l.strip()=='#[cfg(test)]' and i+1<len(lines) and re.match(r'\s*(pub(\(crate\))? )?mod \w+;',lines[i+1]):
            i+=2; continue
        out.append(l); i+=1
    return out
tot={}
files=[]
for d,_,fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(d,f)
        if f in ('tests.rs','testing.rs','layers.rs') or '/tests/' in p: continue
        n=len(strip_tests(open(p).read()))
        files.append((n,p))
        top=p[len(root)+1:].split('/')[0]
        tot[top]=tot.get(top,0)+n
if '-f' in sys.argv:
    for n,p in sorted(files, reverse=True)[:40]: print(n,p)
for k,v in sorted(tot.items(),key=lambda x:-x[1]): print(v,k)
print(sum(tot.values()),'total')
