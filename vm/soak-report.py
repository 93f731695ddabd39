#!/usr/bin/env python3
"""Results of a soak run (tests/vm/soak.c, make soak).

    vm/soak-report.py RESULTS OUTDIR [--command TEXT] [--verdict TEXT] [--doc FILE]

RESULTS is the guest's results port log (build/logs/soak.results). Writes
OUTDIR/soak.csv (one row per generation, from the "report: soak gen=..."
lines, plus the TAP lines counted per generation), OUTDIR/soak.txt (a
table), OUTDIR/plot.dat (for gnuplot) and OUTDIR/summary.md: the command,
the seed, the schedule, what was injected and what happened per fault, the
free-memory trend per kernel flavour (least squares, as in the VM). With
--doc, summary.md also replaces what is between the markers
<!-- soak:begin --> and <!-- soak:end --> in FILE. Standard library only.
"""
import argparse
import csv
import os
import re
import sys
from collections import OrderedDict, defaultdict

KV = re.compile(r'(\w+)=(\S+)')
TAP = re.compile(r'^(not )?ok \d+ - \[gen(\d+)\] (.*)$')
FIELDS = ['gen', 'flavour', 'fault', 'result', 'memfree_kb', 'nr2', 'free2', 'nr1', 'free1',
          'gen_ms', 'boot_ms', 'tap_ok', 'tap_not_ok']


def slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    sx, sy = sum(xs), sum(ys)
    sxx = sum(x * x for x in xs)
    sxy = sum(x * y for x, y in zip(xs, ys))
    d = n * sxx - sx * sx
    return 0.0 if d == 0 else (n * sxy - sx * sy) / d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('results')
    ap.add_argument('outdir')
    ap.add_argument('--command', default='make soak')
    ap.add_argument('--verdict', default='')
    ap.add_argument('--doc')
    a = ap.parse_args()

    lines = open(a.results, errors='replace').read().replace('\r', '').splitlines()
    rows = OrderedDict()
    tap = defaultdict(lambda: [0, 0])
    notok = []
    head, sched, trends, done = {}, '', [], None
    started = set()
    for l in lines:
        m = TAP.match(l)
        if m:
            g = int(m.group(2))
            tap[g][1 if m.group(1) else 0] += 1
            if m.group(1):
                notok.append(l)
            continue
        if l.startswith('HUGELIVE gen=') and ' start ' in l:
            started.add(int(l.split('=')[1].split()[0]))
        if not l.startswith('report: soak'):
            continue
        kv = dict(KV.findall(l))
        if l.startswith('report: soak schedule'):
            sched = l[len('report: soak schedule '):]
        elif l.startswith('report: soak trend'):
            trends.append(kv)
        elif l.startswith('report: soak done'):
            done = kv
        elif 'gen' in kv:
            rows[int(kv['gen'])] = kv
        elif 'seed' in kv:
            head = kv
    os.makedirs(a.outdir, exist_ok=True)
    out = []
    for g, kv in rows.items():
        r = {k: kv.get(k, '') for k in FIELDS}
        r['tap_ok'], r['tap_not_ok'] = tap[g]
        out.append(r)
    with open(os.path.join(a.outdir, 'soak.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(out)
    widths = {k: max(len(k), *(len(str(r[k])) for r in out)) if out else len(k) for k in FIELDS}
    with open(os.path.join(a.outdir, 'soak.txt'), 'w') as f:
        f.write('  '.join(k.rjust(widths[k]) for k in FIELDS) + '\n')
        for r in out:
            f.write('  '.join(str(r[k]).rjust(widths[k]) for k in FIELDS) + '\n')
    with open(os.path.join(a.outdir, 'plot.dat'), 'w') as f:
        f.write('# gen memfree_MiB gen_s boot_s flavour(0/1) fault(0 none, 1 some)\n')
        fl0 = out[0]['flavour'] if out else ''
        for r in out:
            f.write('%s %.2f %.2f %.2f %d %d\n' % (r['gen'], int(r['memfree_kb']) / 1024.0,
                                                 float(r['gen_ms']) / 1000, float(r['boot_ms']) / 1000,
                                                 r['flavour'] != fl0, r['fault'] != 'none'))

    # trend per flavour, generations >= 1 (as the VM computes it)
    host_trend = []
    for fl in OrderedDict((r['flavour'], 1) for r in out):
        pts = [(int(r['gen']), int(r['memfree_kb'])) for r in out if r['flavour'] == fl and int(r['gen']) >= 1]
        if len(pts) < 2:
            continue
        ys = [p[1] for p in pts]
        host_trend.append((fl, len(pts), min(ys), max(ys), slope([p[0] for p in pts], ys)))
    gms = [float(r['gen_ms']) for r in out if int(r['gen']) >= 1]
    by_fault = defaultdict(list)
    for r in out:
        by_fault[r['fault']].append(r)

    s = []
    s.append('Command: `%s`' % a.command)
    s.append('')
    s.append('Seed %s, %d of %s generations reported (%d started), kernels %s alternating.' % (
        head.get('seed', '?'), len(out), head.get('generations', '?'), len(started), head.get('kernels', '?')))
    if a.verdict:
        s.append('')
        s.append('Harness verdict: `%s`' % a.verdict)
    s.append('')
    s.append('TAP lines: %d ok, %d not ok.' % (sum(v[0] for v in tap.values()), sum(v[1] for v in tap.values())))
    if notok:
        s.append('')
        s.append('Failures:')
        s.append('')
        for l in notok[:20]:
            s.append('    ' + l)
    s.append('')
    s.append('| fault | generations | result |')
    s.append('|---|---|---|')
    for fa in sorted(by_fault, key=lambda x: (x == 'none', x)):
        rs = by_fault[fa]
        bad = [r for r in rs if r['result'] != 'ok' or int(r['tap_not_ok'])]
        s.append('| %s | %s | %s |' % (fa, ' '.join(str(r['gen']) for r in rs),
                                       'all checks ok' if not bad else
                                       'FAILED in gen %s' % ' '.join(str(r['gen']) for r in bad)))
    s.append('')
    if gms:
        gms_s = sorted(gms)
        s.append('Time per generation (TSC, previous update call to this one; gen >= 1): median %.1f s, '
                 'min %.1f s, max %.1f s, total run %.1f min.' % (
                     gms_s[len(gms_s) // 2] / 1000, gms_s[0] / 1000, gms_s[-1] / 1000,
                     sum(float(r['gen_ms']) for r in out) / 60000))
        s.append('')
    s.append('MemFree+Shmem after the claims, per flavour, generations >= 1 (least squares; the VM bounds '
             'the slope to +-1024 kB per generation when a flavour has 8 points or more, and the spread to '
             '32 MiB):')
    s.append('')
    s.append('| flavour | generations | min kB | max kB | spread kB | trend kB/gen |')
    s.append('|---|---|---|---|---|---|')
    for fl, n, lo, hi, sl in host_trend:
        s.append('| %s | %d | %d | %d | %d | %+.0f |' % (fl, n, lo, hi, hi - lo, sl))
    if trends:
        s.append('')
        s.append('In the VM (last generation): ' + '; '.join(
            '%s %s gens, slope %s kB/gen, spread %s kB' % (t.get('flavour'), t.get('gens'),
                                                           t.get('slope_kb_per_gen'), t.get('spread_kb'))
            for t in trends) + '.')
    pools = sorted({(r['nr2'], r['free2'], r['nr1'], r['free1']) for r in out})
    s.append('')
    s.append('Pools before each update (2 MiB nr/free, 1 GiB nr/free): ' +
             ', '.join('%s/%s, %s/%s' % p for p in pools) + '.')
    if sched:
        s.append('')
        s.append('Schedule (generation:fault): ' + sched)
    if done is None:
        s.append('')
        s.append('The run did not reach its last generation.')
    text = '\n'.join(s) + '\n'
    open(os.path.join(a.outdir, 'summary.md'), 'w').write(text)
    sys.stdout.write(open(os.path.join(a.outdir, 'soak.txt')).read())
    sys.stdout.write('\n' + text)
    if a.doc:
        d = open(a.doc).read()
        b, e = '<!-- soak:begin -->', '<!-- soak:end -->'
        if b in d and e in d:
            d = d[:d.index(b) + len(b)] + '\n' + text + d[d.index(e):]
            open(a.doc, 'w').write(d)
    return 0


if __name__ == '__main__':
    sys.exit(main())
