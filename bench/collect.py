#!/usr/bin/env python3
"""Turn the raw benchmark logs (build/bench/logs) into results files.

    bench/collect.py LOGDIR OUTDIR [--machine TEXT] [--kernel PATH] [--wall SECS]

Writes OUTDIR/results.csv (one row per measured step), results.json (raw
rows, summary, targets, agreement with the previous run), summary.csv
(median/min/max per kind, size and metric), summary.md (tables) and the
data files that bench/plot.sh plots. If OUTDIR/results.json exists it is
kept as previous.json and the new medians are checked against its spread.
Standard library only.
"""
import argparse
import csv
import datetime
import json
import os
import re
import statistics
import sys

KV = re.compile(r'(\w+)=(\S+)')
KINDS = ['memfd4k', 'hugetlb2m', 'hugetlb1g']


def num(v):
    try:
        return float(v) if ('.' in v or 'e' in v) else int(v)
    except ValueError:
        return v


def kv(line):
    return {k: num(v) for k, v in KV.findall(line)}


def read(path):
    try:
        with open(path, errors='replace') as f:
            return f.read().replace('\r', '').splitlines()
    except FileNotFoundError:
        return []


def console_kexec_paths(lines):
    """Old-kernel printk time from our marker to "Starting new kernel", per kexec."""
    out, mark = [], None
    ts = re.compile(r'^\[\s*(\d+\.\d+)\]')
    for l in lines:
        m = ts.match(l)
        if not m:
            continue
        if 'hlbench: kexec call' in l:
            mark = float(m.group(1))
        elif 'Starting new kernel' in l:
            out.append((float(m.group(1)) - mark) * 1e3 if mark is not None else None)
            mark = None
    return out


def chain_rows(logdir, name):
    res = read(os.path.join(logdir, name + '.results'))
    paths = console_kexec_paths(read(os.path.join(logdir, name + '.log')))
    pres, rets = {}, {}
    for l in res:
        if l.startswith('report: bench-preserve '):
            d = kv(l)
            pres[d['step']] = d
        elif l.startswith('report: bench '):
            d = kv(l)
            rets[d['step']] = d
    rows, seen = [], {}
    for step in sorted(rets):
        p, r = pres.get(step, {}), rets[step]
        key = (r['kind'], r['mib'])
        rep = seen.get(key, 0)
        seen[key] = rep + 1
        row = {'chain': name, 'mode': r['mode'], 'step': step, 'kind': r['kind'],
               'mib': r['mib'], 'rep': rep}
        for k in ('fill_ms', 'preserve_ms', 'entries', 'meta_bytes'):
            row[k] = p.get(k)
        for k in ('retrieve_ms', 'map_ms', 'touch_ms', 'read_ms', 'finish_ms',
                  'quiesce_to_call_ms', 'call_to_entry_ms', 'entry_to_init_ms',
                  'init_to_prog_ms', 'prog_to_ready_ms', 'ready_to_mapped_ms',
                  'blackout_ms', 'blackout_read_ms', 'restored_folios', 'restored_hvo'):
            row[k] = r.get(k)
        row['kexec_path_ms'] = paths[step] if step < len(paths) else None
        row['preserve_retrieve_ms'] = (row['preserve_ms'] or 0) + (row['retrieve_ms'] or 0)
        row['remap_ms'] = (row['map_ms'] or 0) + (row['touch_ms'] or 0)
        row['first_read_ms'] = row['remap_ms'] + (row['read_ms'] or 0)
        row['meta_per_entry'] = (row['meta_bytes'] / row['entries']) if row['entries'] else None
        rows.append(row)
    # What the kexec and the next boot cost more than with nothing preserved,
    # against the "none" step of the same repetition of the same chain.
    for row in rows:
        base = [b for b in rows if b['kind'] == 'none' and b['rep'] == row['rep']]
        if base and row['kind'] != 'none':
            b = base[0]
            for k, src in (('kexec_over_ms', 'kexec_path_ms'),
                           ('entry_over_ms', 'call_to_entry_ms'),
                           ('boot_over_ms', 'entry_to_init_ms'),
                           ('blackout_over_ms', 'blackout_ms')):
                if row[src] is not None and b[src] is not None:
                    row[k] = row[src] - b[src]
            if row.get('blackout_ms') and b.get('blackout_ms'):
                row['blackout_vs_none'] = row['blackout_ms'] / b['blackout_ms']
    return rows


def stamp_time(logdir, name, pred):
    """Host ns at which the first results line matching pred arrived."""
    res = read(os.path.join(logdir, name + '.results'))
    idx = next((i + 1 for i, l in enumerate(res) if pred(l)), None)
    host = {}
    times = []
    for l in read(os.path.join(logdir, name + '.stamped')):
        if l.startswith('host '):
            host = kv(l)
        else:
            a = l.split()
            if len(a) == 2:
                times.append((int(a[0]), int(a[1])))
    t = next((ns for ns, n in times if idx is not None and n >= idx), None)
    return t, host


def disk_rows(logdir):
    rows = []
    r = 0
    while os.path.exists(os.path.join(logdir, 'disk-save-%d.results' % r)):
        save = {d['mib']: d for d in map(kv, read(os.path.join(logdir, 'disk-save-%d.results' % r)))
                if d.get('side') == 'save'}
        loadl = [kv(l) for l in read(os.path.join(logdir, 'disk-load-%d.results' % r))]
        load = {d['mib']: d for d in loadl if d.get('side') == 'load'}
        boot = next((d for d in loadl if d.get('side') == 'boot'), {})
        t_exit, hs = stamp_time(logdir, 'disk-save-%d' % r, lambda l: l.startswith('HUGELIVE exit'))
        t_prog, hl = stamp_time(logdir, 'disk-load-%d' % r, lambda l: 'side=boot' in l)
        shutdown = (hs['exit_ns'] - t_exit) / 1e6 if t_exit and hs.get('exit_ns') else None
        bootms = (t_prog - hl['launch_ns']) / 1e6 if t_prog and hl.get('launch_ns') else None
        for mib in sorted(save):
            if mib not in load:
                continue
            row = {'chain': 'disk', 'mode': 'disk', 'step': 0, 'kind': 'disk', 'mib': mib,
                   'rep': r, 'save_ms': save[mib]['save_ms'], 'shutdown_ms': shutdown,
                   'boot_ms': bootms, 'kernel_boot_ms': boot.get('prog_boot_ms'),
                   'load_ms': load[mib]['load_ms'], 'read_ms': load[mib]['read_ms']}
            if None not in (shutdown, bootms):
                row['blackout_ms'] = row['save_ms'] + shutdown + bootms + row['load_ms']
                row['blackout_read_ms'] = row['blackout_ms'] + row['read_ms']
            row['preserve_ms'] = row['save_ms']
            row['retrieve_ms'] = row['load_ms']
            row['preserve_retrieve_ms'] = row['save_ms'] + row['load_ms']
            row['first_read_ms'] = row['read_ms']
            rows.append(row)
        r += 1
    return rows


METRICS = ['preserve_ms', 'retrieve_ms', 'preserve_retrieve_ms', 'kexec_path_ms',
           'kexec_over_ms', 'call_to_entry_ms', 'entry_over_ms', 'entry_to_init_ms',
           'boot_over_ms', 'remap_ms', 'read_ms', 'first_read_ms', 'finish_ms',
           'entries', 'meta_bytes', 'meta_per_entry', 'restored_folios',
           'quiesce_to_call_ms', 'init_to_prog_ms', 'prog_to_ready_ms',
           'ready_to_mapped_ms', 'blackout_ms', 'blackout_read_ms', 'blackout_over_ms',
           'blackout_vs_none', 'save_ms', 'shutdown_ms', 'boot_ms', 'kernel_boot_ms',
           'load_ms', 'fill_ms']


def summarize(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r['mode'], r['kind'], r['mib']), []).append(r)
    out = []
    for (mode, kind, mib), rs in sorted(groups.items(), key=lambda x: (x[0][0], x[0][1], x[0][2])):
        s = {'mode': mode, 'kind': kind, 'mib': mib, 'n': len(rs)}
        for m in METRICS:
            v = [r[m] for r in rs if isinstance(r.get(m), (int, float))]
            if v:
                s[m] = {'median': statistics.median(v), 'min': min(v), 'max': max(v), 'n': len(v)}
        out.append(s)
    return out


def get(summary, mode, kind, mib, metric, stat='median'):
    for s in summary:
        if s['mode'] == mode and s['kind'] == kind and s['mib'] == mib and metric in s:
            return s[metric][stat]
    return None


def fmt(v, unit=''):
    if v is None:
        return 'n/a'
    if isinstance(v, float):
        if abs(v) >= 100:
            return '%.0f%s' % (v, unit)
        if abs(v) >= 10:
            return '%.1f%s' % (v, unit)
        return '%.2f%s' % (v, unit)
    return '%s%s' % (v, unit)


def cell(s, m):
    if m not in s:
        return 'n/a'
    d = s[m]
    if d['n'] == 1 or d['min'] == d['max']:
        return fmt(d['median'])
    return '%s [%s–%s]' % (fmt(d['median']), fmt(d['min']), fmt(d['max']))


def targets(summary, rows):
    t = {}
    # 1. metadata per huge page
    for kind in ('hugetlb2m', 'hugetlb1g'):
        pts = sorted({(s['mib'], s['entries']['median'], s['meta_bytes']['median'])
                      for s in summary if s['mode'] == 'direct' and s['kind'] == kind
                      and 'entries' in s and 'meta_bytes' in s})
        if len(pts) >= 2:
            (m0, e0, b0), (m1, e1, b1) = pts[0], pts[-1]
            slope = (b1 - b0) / (e1 - e0) if e1 != e0 else None
            const = b0 - slope * e0 if slope is not None else None
            t['meta_' + kind] = {'marginal_bytes_per_page': slope, 'constant_bytes': const,
                                 'total_per_page_at_max': b1 / e1, 'max_mib': m1, 'pages_at_max': e1,
                                 'met_marginal': slope is not None and slope <= 32,
                                 'met_total': b1 / e1 <= 32}
    # 2. preserve+retrieve of 1 GiB: 4K memfd vs 2M hugetlb
    a = get(summary, 'direct', 'memfd4k', 1024, 'preserve_retrieve_ms')
    b = get(summary, 'direct', 'hugetlb2m', 1024, 'preserve_retrieve_ms')
    if a and b:
        # The ratio per repetition, then its spread.
        ra = {r['rep']: r['preserve_retrieve_ms'] for r in rows
              if r['mode'] == 'direct' and r['kind'] == 'memfd4k' and r['mib'] == 1024}
        rb = {r['rep']: r['preserve_retrieve_ms'] for r in rows
              if r['mode'] == 'direct' and r['kind'] == 'hugetlb2m' and r['mib'] == 1024}
        per = [ra[k] / rb[k] for k in ra if k in rb and rb[k]]
        t['ratio_1g_memfd_vs_2m'] = {'memfd4k_ms': a, 'hugetlb2m_ms': b, 'ratio': a / b,
                                     'ratio_min': min(per) if per else None,
                                     'ratio_max': max(per) if per else None, 'met': a / b >= 100}
    # 3. 1 GiB pages: cost against size
    c1 = get(summary, 'direct', 'hugetlb1g', 1024, 'preserve_retrieve_ms')
    c2 = get(summary, 'direct', 'hugetlb1g', 2048, 'preserve_retrieve_ms')
    n0 = get(summary, 'direct', 'none', 0, 'retrieve_ms')
    m2 = get(summary, 'direct', 'memfd4k', 2048, 'preserve_retrieve_ms')
    if c1 and c2:
        per_page = c2 - c1
        t['hugetlb1g_size'] = {'cost_1g_ms': c1, 'cost_2g_ms': c2, 'per_page_ms': per_page,
                               'fixed_ms': c1 - per_page, 'ratio_2g_over_1g': c2 / c1,
                               'none_retrieve_ms': n0, 'memfd4k_2g_ms': m2,
                               'r1': {k: get(summary, 'direct', 'hugetlb1g', k, 'retrieve_ms') for k in (1024, 2048)},
                               'p1': {k: get(summary, 'direct', 'hugetlb1g', k, 'preserve_ms') for k in (1024, 2048)}}
    # 4. blackout with 2 GiB hugetlb vs nothing
    for mode in ('agent', 'direct'):
        base = get(summary, mode, 'none', 0, 'blackout_ms')
        for kind in ('hugetlb2m', 'hugetlb1g', 'memfd4k'):
            v = get(summary, mode, kind, 2048, 'blackout_ms')
            if base and v:
                vs = [r.get('blackout_vs_none') for r in rows if r['mode'] == mode and r['kind'] == kind
                      and r['mib'] == 2048 and r.get('blackout_vs_none')]
                t['blackout_%s_%s' % (mode, kind)] = {
                    'none_ms': base, 'ms': v, 'ratio': v / base,
                    'ratio_per_rep_median': statistics.median(vs) if vs else None,
                    'ratio_min': min(vs) if vs else None, 'ratio_max': max(vs) if vs else None,
                    'met': v / base <= 1.05}
    # 5. retrieve does not touch contents
    for kind in ('hugetlb2m', 'hugetlb1g', 'memfd4k'):
        pts = [(s['mib'], s['retrieve_ms']['median'], s.get('read_ms', {}).get('median'),
                s.get('entries', {}).get('median'))
               for s in summary if s['mode'] == 'direct' and s['kind'] == kind and 'retrieve_ms' in s]
        if pts:
            t['retrieve_' + kind] = [{'mib': m, 'retrieve_ms': r, 'read_ms': rd, 'entries': e,
                                      'retrieve_us_per_entry': (r - (n0 or 0)) * 1e3 / e if e else None,
                                      'retrieve_ms_per_gib': r * 1024 / m if m else None}
                                     for m, r, rd, e in sorted(pts)]
    return t


def agreement(prev, summary):
    """Does each median of this run fall inside the previous run's [min, max]
    (or the ranges overlap)?"""
    keys = ['preserve_ms', 'retrieve_ms', 'preserve_retrieve_ms', 'first_read_ms',
            'meta_bytes', 'entries', 'blackout_ms', 'kexec_path_ms']
    old = {(s['mode'], s['kind'], s['mib']): s for s in prev.get('summary', [])}
    out = []
    for s in summary:
        o = old.get((s['mode'], s['kind'], s['mib']))
        if not o:
            continue
        for k in keys:
            if k in s and k in o:
                a, b = s[k], o[k]
                inside = b['min'] <= a['median'] <= b['max']
                overlap = a['min'] <= b['max'] and b['min'] <= a['max']
                out.append({'mode': s['mode'], 'kind': s['kind'], 'mib': s['mib'], 'metric': k,
                            'now': a['median'], 'now_min': a['min'], 'now_max': a['max'],
                            'prev': b['median'], 'prev_min': b['min'], 'prev_max': b['max'],
                            'inside': inside, 'overlap': overlap})
    return out


def write_md(path, meta, summary, t, agree):
    L = []
    w = L.append
    w('<!-- generated by bench/collect.py -->')
    w('Run: %s, machine: %s, kernel image: `%s`, `make bench` wall time %s s. '
      'Cells: median [min–max] over the repetitions (n per row). Times in ms of a '
      'QEMU TCG guest: compare them within this run only.' %
      (meta['date'], meta['machine'], meta['kernel'], meta['wall_s']))
    w('')
    w('### Per kind and size (direct LUO ioctls, no agent)')
    w('')
    w('| kind | MiB | n | preserve | retrieve | preserve+retrieve | kexec path (old kernel) | kexec path − none | kernel clock start → /init − none | map+touch | first full read | entries | metadata B | B/entry |')
    w('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for s in summary:
        if s['mode'] != 'direct':
            continue
        w('| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            s['kind'], s['mib'], s['n'], cell(s, 'preserve_ms'), cell(s, 'retrieve_ms'),
            cell(s, 'preserve_retrieve_ms'), cell(s, 'kexec_path_ms'), cell(s, 'kexec_over_ms'),
            cell(s, 'boot_over_ms'), cell(s, 'remap_ms'), cell(s, 'first_read_ms'),
            cell(s, 'entries'), cell(s, 'meta_bytes'), cell(s, 'meta_per_entry')))
    w('')
    w('### Blackout breakdown through the agent (hugelived), ms')
    w('')
    w('| what | n | client quiesced → kexec call | kexec call → new kernel clock start | → /init | /init → client start | client start → agent ready | agent ready → memory mapped | blackout (quiesced → mapped) | ÷ nothing | + first full read |')
    w('|---|---|---|---|---|---|---|---|---|---|---|')
    for s in summary:
        if s['mode'] != 'agent':
            continue
        w('| %s %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            s['kind'], ('%s MiB' % s['mib']) if s['mib'] else '', s['n'], cell(s, 'quiesce_to_call_ms'),
            cell(s, 'call_to_entry_ms'), cell(s, 'entry_to_init_ms'), cell(s, 'init_to_prog_ms'),
            cell(s, 'prog_to_ready_ms'), cell(s, 'ready_to_mapped_ms'), cell(s, 'blackout_ms'),
            cell(s, 'blackout_vs_none'), cell(s, 'read_ms')))
    w('')
    w('### No preservation: data saved to a virtio disk, normal reboot (new QEMU boot), loaded back, ms')
    w('')
    w('| MiB | n | save (write+fdatasync) | shutdown (host) | boot to client start (host, incl. firmware) | load (read) | blackout (save → loaded) | first full read (verify) |')
    w('|---|---|---|---|---|---|---|---|')
    for s in summary:
        if s['mode'] != 'disk':
            continue
        w('| %s | %d | %s | %s | %s | %s | %s | %s |' % (
            s['mib'], s['n'], cell(s, 'save_ms'), cell(s, 'shutdown_ms'), cell(s, 'boot_ms'),
            cell(s, 'load_ms'), cell(s, 'blackout_ms'), cell(s, 'read_ms')))
    w('')
    w('### Targets')
    w('')
    for kind in ('hugetlb2m', 'hugetlb1g'):
        m = t.get('meta_' + kind)
        if m:
            w('- metadata, %s: %s B per extra page (marginal), plus %s B per update (file header and pool table); '
              'at %s MiB (%d pages) %s B per page in total → %s' % (
                  kind, fmt(m['marginal_bytes_per_page']), fmt(m['constant_bytes']), m['max_mib'],
                  m['pages_at_max'], fmt(m['total_per_page_at_max']),
                  'met' if m['met_total'] else ('met per page, not counting the fixed header' if m['met_marginal'] else 'NOT met')))
    r = t.get('ratio_1g_memfd_vs_2m')
    if r:
        w('- preserve+retrieve of 1 GiB: 4 KiB memfd %s ms, 2 MiB hugetlb %s ms → %s× (per repetition %s–%s×; target ≥ 100×) → %s' % (
            fmt(r['memfd4k_ms']), fmt(r['hugetlb2m_ms']), fmt(r['ratio']), fmt(r['ratio_min']),
            fmt(r['ratio_max']), 'met' if r['met'] else 'NOT met'))
    g = t.get('hugetlb1g_size')
    if g:
        w('- 1 GiB pages: preserve+retrieve %s ms for 1 GiB, %s ms for 2 GiB (%s ms per extra page, '
          'fixed part %s ms; nothing preserved: retrieve %s ms; 2 GiB in a 4 KiB memfd: %s ms)' % (
              fmt(g['cost_1g_ms']), fmt(g['cost_2g_ms']), fmt(g['per_page_ms']), fmt(g['fixed_ms']),
              fmt(g['none_retrieve_ms']), fmt(g['memfd4k_2g_ms'])))
    for mode in ('agent', 'direct'):
        for kind in ('hugetlb2m', 'hugetlb1g', 'memfd4k'):
            b = t.get('blackout_%s_%s' % (mode, kind))
            if b:
                w('- blackout (%s), 2 GiB %s: %s ms vs %s ms with nothing preserved → ×%s of medians '
                  '(per repetition ×%s, range ×%s–×%s; target ≤ ×1.05) → %s' % (
                      mode, kind, fmt(b['ms']), fmt(b['none_ms']), '%.3f' % b['ratio'],
                      '%.3f' % b['ratio_per_rep_median'] if b['ratio_per_rep_median'] else 'n/a',
                      '%.3f' % b['ratio_min'] if b['ratio_min'] else 'n/a',
                      '%.3f' % b['ratio_max'] if b['ratio_max'] else 'n/a',
                      'met' if b['met'] else 'NOT met'))
    for kind in ('hugetlb2m', 'hugetlb1g', 'memfd4k'):
        pts = t.get('retrieve_' + kind)
        if pts:
            w('- retrieve, %s: %s' % (kind, '; '.join(
                '%s MiB %s ms (%s entries, first full read %s ms)' % (
                    p['mib'], fmt(p['retrieve_ms']), fmt(p['entries']), fmt(p['read_ms'])) for p in pts)))
    if agree:
        n_in = sum(a['inside'] for a in agree)
        n_ov = sum(a['overlap'] for a in agree)
        w('')
        w('### Agreement with the previous run')
        w('')
        w('%d of %d medians lie inside the previous run\'s [min–max]; %d of %d ranges overlap. '
          'Not overlapping:' % (n_in, len(agree), n_ov, len(agree)))
        w('')
        bad = [a for a in agree if not a['overlap']]
        if not bad:
            w('(none)')
        for a in bad:
            w('- %s %s %s MiB %s: now %s [%s–%s], before %s [%s–%s]' % (
                a['mode'], a['kind'], a['mib'], a['metric'], fmt(a['now']), fmt(a['now_min']),
                fmt(a['now_max']), fmt(a['prev']), fmt(a['prev_min']), fmt(a['prev_max'])))
    with open(path, 'w') as f:
        f.write('\n'.join(L) + '\n')


def write_plot_data(out, summary):
    """Whitespace tables for gnuplot: one block per kind."""
    with open(os.path.join(out, 'plot-size.dat'), 'w') as f:
        for kind in KINDS:
            f.write('# %s\n' % kind)
            f.write('# mib pr_med pr_min pr_max pres_med pres_min pres_max ret_med ret_min ret_max '
                    'read_med read_min read_max kex_med kex_min kex_max\n')
            for s in summary:
                if s['mode'] != 'direct' or s['kind'] != kind:
                    continue
                vals = [s['mib']]
                for m in ('preserve_retrieve_ms', 'preserve_ms', 'retrieve_ms', 'first_read_ms', 'kexec_path_ms'):
                    d = s.get(m, {'median': float('nan'), 'min': float('nan'), 'max': float('nan')})
                    vals += [d['median'], d['min'], d['max']]
                f.write(' '.join('%g' % v for v in vals) + '\n')
            f.write('\n\n')
    with open(os.path.join(out, 'plot-blackout.dat'), 'w') as f:
        f.write('# label quiesce_to_call call_to_entry entry_to_init init_to_prog prog_to_ready ready_to_mapped\n')
        for s in summary:
            if s['mode'] != 'agent':
                continue
            lab = 'nothing' if s['kind'] == 'none' else '%s-%dG' % (s['kind'], s['mib'] // 1024) if s['mib'] >= 1024 else '%s-%dM' % (s['kind'], s['mib'])
            vals = [s.get(m, {}).get('median', 0) for m in
                    ('quiesce_to_call_ms', 'call_to_entry_ms', 'entry_to_init_ms', 'init_to_prog_ms',
                     'prog_to_ready_ms', 'ready_to_mapped_ms')]
            f.write('"%s" %s\n' % (lab, ' '.join('%g' % (v / 1e3) for v in vals)))
    with open(os.path.join(out, 'plot-disk.dat'), 'w') as f:
        f.write('# label save shutdown boot load\n')
        for s in summary:
            if s['mode'] != 'disk':
                continue
            vals = [s.get(m, {}).get('median', 0) for m in ('save_ms', 'shutdown_ms', 'boot_ms', 'load_ms')]
            lab = 'disk-%dG' % (s['mib'] // 1024) if s['mib'] >= 1024 else 'disk-%dM' % s['mib']
            f.write('"%s" %s\n' % (lab, ' '.join('%g' % (v / 1e3) for v in vals)))


def update_doc(out):
    """Put summary.md between the bench markers of docs/performance.md (only
    for the default results directory)."""
    top = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
    if os.path.abspath(out) != os.path.join(top, 'bench', 'results'):
        return
    doc = os.path.join(top, 'docs', 'performance.md')
    if not os.path.exists(doc):
        return
    text = open(doc).read()
    b, e = '<!-- bench:begin -->', '<!-- bench:end -->'
    if b not in text or e not in text:
        return
    with open(os.path.join(out, 'summary.md')) as f:
        table = f.read()
    text = text[:text.index(b) + len(b)] + '\n' + table + text[text.index(e):]
    with open(doc, 'w') as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('logdir')
    ap.add_argument('out')
    ap.add_argument('--machine', default='?')
    ap.add_argument('--kernel', default='?')
    ap.add_argument('--wall', default='?')
    a = ap.parse_args()
    rows = []
    for name in ('memfd4k', 'hugetlb2m', 'hugetlb1g', 'agent'):
        rows += chain_rows(a.logdir, name)
    rows += disk_rows(a.logdir)
    if not rows:
        sys.exit('collect: no results in %s' % a.logdir)
    summary = summarize(rows)
    t = targets(summary, rows)
    os.makedirs(a.out, exist_ok=True)
    prev = {}
    pj = os.path.join(a.out, 'results.json')
    if os.path.exists(pj):
        with open(pj) as f:
            prev = json.load(f)
        os.replace(pj, os.path.join(a.out, 'previous.json'))
    agree = agreement(prev, summary) if prev else []
    meta = {'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
            'machine': a.machine, 'kernel': a.kernel, 'wall_s': a.wall}
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    with open(os.path.join(a.out, 'results.csv'), 'w', newline='') as f:
        wr = csv.DictWriter(f, fieldnames=cols)
        wr.writeheader()
        for r in rows:
            wr.writerow(r)
    with open(os.path.join(a.out, 'summary.csv'), 'w', newline='') as f:
        wr = csv.writer(f)
        wr.writerow(['mode', 'kind', 'mib', 'metric', 'n', 'median', 'min', 'max'])
        for s in summary:
            for m in METRICS:
                if m in s:
                    d = s[m]
                    wr.writerow([s['mode'], s['kind'], s['mib'], m, d['n'], d['median'], d['min'], d['max']])
    with open(pj, 'w') as f:
        json.dump({'meta': meta, 'rows': rows, 'summary': summary, 'targets': t,
                   'agreement_with_previous': agree}, f, indent=1)
    write_md(os.path.join(a.out, 'summary.md'), meta, summary, t, agree)
    write_plot_data(a.out, summary)
    update_doc(a.out)
    print(open(os.path.join(a.out, 'summary.md')).read())


if __name__ == '__main__':
    main()
