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
               'mib': r['mib'], 'rep': rep,
               # "nothing preserved" is the reference of its own VM (chain)
               'vm': name if r['kind'] == 'none' else ''}
        for k in ('fill_ms', 'preserve_ms', 'entries', 'meta_bytes'):
            row[k] = p.get(k)
        for k in ('retrieve_ms', 'retrieve_fd_ms', 'map_ms', 'touch_ms', 'read_ms', 'finish_ms',
                  'quiesce_to_call_ms', 'call_to_entry_ms', 'entry_to_init_ms',
                  'init_to_prog_ms', 'prog_to_ready_ms', 'ready_to_mapped_ms',
                  'blackout_ms', 'blackout_read_ms', 'restored_folios', 'restored_hvo',
                  'struct_pages', 'pool_locks'):
            row[k] = r.get(k)
        # -1: the kernel has no such counter (before patch 18 of the series)
        if row.get('pool_locks') is not None and row['pool_locks'] < 0:
            row['pool_locks'] = None
        row['kexec_path_ms'] = paths[step] if step < len(paths) else None
        row['preserve_retrieve_ms'] = (row['preserve_ms'] or 0) + (row['retrieve_ms'] or 0)
        if row.get('retrieve_fd_ms') is not None:
            row['preserve_retrieve_fd_ms'] = (row['preserve_ms'] or 0) + row['retrieve_fd_ms']
        row['remap_ms'] = (row['map_ms'] or 0) + (row['touch_ms'] or 0)
        row['first_read_ms'] = row['remap_ms'] + (row['read_ms'] or 0)
        row['meta_per_entry'] = (row['meta_bytes'] / row['entries']) if row['entries'] else None
        sp = row.get('struct_pages')
        row['struct_pages_per_entry'] = (sp / row['entries']) if row['entries'] and sp is not None else None
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
                # The preservation-dependent parts that are timed precisely:
                # retrieve beyond the session/stamp of "nothing", mapping the
                # data, and the old kernel's kexec path beyond "nothing".
                row['attrib_ms'] = (row['retrieve_ms'] - b['retrieve_ms']) + row['remap_ms'] + \
                    max(0.0, row.get('kexec_over_ms') or 0.0)
                row['attrib_frac'] = row['attrib_ms'] / b['blackout_ms']
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
                   'rep': r, 'vm': '', 'save_ms': save[mib]['save_ms'], 'shutdown_ms': shutdown,
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


METRICS = ['preserve_ms', 'retrieve_ms', 'retrieve_fd_ms', 'preserve_retrieve_ms',
           'preserve_retrieve_fd_ms', 'attrib_ms', 'attrib_frac', 'kexec_path_ms',
           'kexec_over_ms', 'call_to_entry_ms', 'entry_over_ms', 'entry_to_init_ms',
           'boot_over_ms', 'remap_ms', 'read_ms', 'first_read_ms', 'finish_ms',
           'entries', 'meta_bytes', 'meta_per_entry', 'restored_folios', 'restored_hvo',
           'struct_pages', 'struct_pages_per_entry', 'pool_locks',
           'quiesce_to_call_ms', 'init_to_prog_ms', 'prog_to_ready_ms',
           'ready_to_mapped_ms', 'blackout_ms', 'blackout_read_ms', 'blackout_over_ms',
           'blackout_vs_none', 'save_ms', 'shutdown_ms', 'boot_ms', 'kernel_boot_ms',
           'load_ms', 'fill_ms']


def summarize(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r['mode'], r.get('vm', ''), r['kind'], r['mib']), []).append(r)
    out = []
    for (mode, vm, kind, mib), rs in sorted(groups.items()):
        s = {'mode': mode, 'vm': vm, 'kind': kind, 'mib': mib, 'n': len(rs)}
        for m in METRICS:
            v = [r[m] for r in rs if isinstance(r.get(m), (int, float))]
            if v:
                s[m] = {'median': statistics.median(v), 'min': min(v), 'max': max(v), 'n': len(v)}
        out.append(s)
    return out


def get(summary, mode, kind, mib, metric, stat='median', vm=''):
    for s in summary:
        if s['mode'] == mode and s['kind'] == kind and s['mib'] == mib and metric in s \
                and s.get('vm', '') == vm:
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


def rep_values(rows, mode, kind, mib, metric):
    return {r['rep']: r[metric] for r in rows if r['mode'] == mode and r['kind'] == kind
            and r['mib'] == mib and isinstance(r.get(metric), (int, float))}


def spread(v):
    v = [x for x in v if x is not None]
    if not v:
        return {'median': None, 'min': None, 'max': None, 'n': 0}
    return {'median': statistics.median(v), 'min': min(v), 'max': max(v), 'n': len(v)}


def targets(summary, rows):
    t = {}
    # 1. metadata per huge page (counts: exact)
    for kind in ('hugetlb2m', 'hugetlb1g'):
        pts = sorted({(s['mib'], s['entries']['median'], s['meta_bytes']['median'])
                      for s in summary if s['mode'] == 'direct' and s['kind'] == kind
                      and 'entries' in s and 'meta_bytes' in s})
        if len(pts) >= 2:
            (m0, e0, b0), (m1, e1, b1) = pts[0], pts[-1]
            slope = (b1 - b0) / (e1 - e0) if e1 != e0 else None
            const = b0 - slope * e0 if slope is not None else None
            t['meta_' + kind] = {'points': pts, 'marginal_bytes_per_page': slope,
                                 'constant_bytes': const,
                                 'total_per_page_at_max': b1 / e1, 'max_mib': m1, 'pages_at_max': e1,
                                 'met_marginal': slope is not None and slope <= 32,
                                 'met_total': b1 / e1 <= 32}
    # 2. preserve+retrieve of 1 GiB: 4 KiB memfd vs 2 MiB hugetlb, per
    # repetition (same VM position), data fd only and with the session.
    # The target is for the usual setting, HVO on; without HVO, reported too.
    for kind, sfx in (('hugetlb2m', ''), ('hugetlb2m-nohvo', '_nohvo')):
        for metric in ('preserve_retrieve_fd_ms', 'preserve_retrieve_ms'):
            ra = rep_values(rows, 'direct', 'memfd4k', 1024, metric)
            rb = rep_values(rows, 'direct', kind, 1024, metric)
            if ra and rb:
                per = [ra[k] / rb[k] for k in ra if k in rb and rb[k]]
                a, b = statistics.median(ra.values()), statistics.median(rb.values())
                t['ratio_1g_' + metric + sfx] = {
                    'kind': kind, 'memfd4k_ms': a, 'hugetlb2m_ms': b, 'ratio_of_medians': a / b,
                    'per_rep': spread(per), 'met': a / b >= 100}
    # 2b. What one more GiB costs (the 2048 MiB step minus the 1024 MiB step
    # of the same repetition): the per-call costs that do not depend on the
    # size drop out, among them, under TCG, translating the kernel code of
    # the path for the first time after each kexec.
    metric = 'preserve_retrieve_fd_ms'
    a1, a2 = (rep_values(rows, 'direct', 'memfd4k', m, metric) for m in (1024, 2048))
    b1, b2 = (rep_values(rows, 'direct', 'hugetlb2m', m, metric) for m in (1024, 2048))
    keys = [k for k in a1 if k in a2 and k in b1 and k in b2]
    if keys:
        da = [a2[k] - a1[k] for k in keys]
        db = [b2[k] - b1[k] for k in keys]
        ma, mb = statistics.median(da), statistics.median(db)
        t['marginal_gib'] = {'memfd4k_ms': ma, 'hugetlb2m_ms': mb,
                             'ratio_of_medians': ma / mb if mb > 0 else None,
                             'per_rep': spread([x / y for x, y in zip(da, db) if y > 0]),
                             'met': mb > 0 and ma / mb >= 100}
    # 3. 1 GiB pages: cost against size, and against 2 MiB pages
    g = {}
    for mib in (1024, 2048):
        for m in ('preserve_ms', 'retrieve_fd_ms', 'preserve_retrieve_fd_ms', 'first_read_ms'):
            g['%s_%d' % (m, mib)] = get(summary, 'direct', 'hugetlb1g', mib, m)
    if g.get('preserve_retrieve_fd_ms_1024') and g.get('preserve_retrieve_fd_ms_2048'):
        g['per_page_ms'] = g['preserve_retrieve_fd_ms_2048'] - g['preserve_retrieve_fd_ms_1024']
        g['h2m_2048'] = get(summary, 'direct', 'hugetlb2m', 2048, 'preserve_retrieve_fd_ms')
        g['m4k_2048'] = get(summary, 'direct', 'memfd4k', 2048, 'preserve_retrieve_fd_ms')
        t['hugetlb1g_size'] = g
    # 4. blackout with 2 GiB preserved vs nothing (same chain, same repetition)
    for mode in ('agent', 'direct'):
        for kind in ('hugetlb2m', 'hugetlb1g', 'memfd4k'):
            rs = [r for r in rows if r['mode'] == mode and r['kind'] == kind and r['mib'] == 2048
                  and r.get('blackout_vs_none')]
            if not rs:
                continue
            chain = rs[0]['chain']
            base = get(summary, mode, 'none', 0, 'blackout_ms', vm=chain)
            v = get(summary, mode, kind, 2048, 'blackout_ms')
            t['blackout_%s_%s' % (mode, kind)] = {
                'chain': chain, 'none_ms': base, 'ms': v, 'ratio_of_medians': v / base if base else None,
                'per_rep': spread([r['blackout_vs_none'] for r in rs]),
                'attrib_ms': spread([r.get('attrib_ms') for r in rs]),
                'attrib_frac': spread([r.get('attrib_frac') for r in rs]),
                'none_spread': spread([r['blackout_ms'] for r in rows if r['mode'] == mode
                                       and r['kind'] == 'none' and r['chain'] == chain]),
                'met_medians': bool(base) and v / base <= 1.05}
    # 5. retrieve does not touch contents: retrieve of the data fd per entry
    # and against reading the same bytes
    for kind in ('hugetlb2m', 'hugetlb2m-nohvo', 'hugetlb1g', 'memfd4k'):
        pts = []
        for s in summary:
            if s['mode'] == 'direct' and s['kind'] == kind and 'retrieve_fd_ms' in s:
                e = s.get('entries', {}).get('median')
                r = s['retrieve_fd_ms']['median']
                rd = s.get('read_ms', {}).get('median')
                pts.append({'mib': s['mib'], 'retrieve_fd_ms': r, 'read_ms': rd, 'entries': e,
                            'us_per_entry': r * 1e3 / e if e else None,
                            'ms_per_gib': r * 1024 / s['mib'],
                            'read_ms_per_gib': rd * 1024 / s['mib'] if rd else None,
                            'retrieve_over_read': r / rd if rd else None})
        if pts:
            t['retrieve_' + kind] = sorted(pts, key=lambda p: p['mib'])
    return t


def agreement(prev, summary):
    """Does each median of this run fall inside the previous run's [min, max]
    (or the ranges overlap)?"""
    keys = ['preserve_ms', 'retrieve_fd_ms', 'preserve_retrieve_fd_ms', 'first_read_ms',
            'meta_bytes', 'entries', 'blackout_ms', 'kexec_path_ms', 'save_ms', 'load_ms']
    old = {(s['mode'], s.get('vm', ''), s['kind'], s['mib']): s for s in prev.get('summary', [])}
    out = []
    for s in summary:
        o = old.get((s['mode'], s.get('vm', ''), s['kind'], s['mib']))
        if not o:
            continue
        for k in keys:
            if k in s and k in o:
                a, b = s[k], o[k]
                inside = b['min'] <= a['median'] <= b['max']
                overlap = a['min'] <= b['max'] and b['min'] <= a['max']
                out.append({'mode': s['mode'], 'vm': s.get('vm', ''), 'kind': s['kind'],
                            'mib': s['mib'], 'metric': k,
                            'prev_date': prev.get('meta', {}).get('date'),
                            'now': a['median'], 'now_min': a['min'], 'now_max': a['max'],
                            'prev': b['median'], 'prev_min': b['min'], 'prev_max': b['max'],
                            'inside': inside, 'overlap': overlap})
    return out


def label(s):
    if s['kind'] == 'none':
        return 'nothing' + (' (%s VM)' % s['vm'] if s.get('vm') else '')
    return s['kind']


def pct(x):
    return 'n/a' if x is None else '%.1f%%' % (100 * x)


def sp(d, f=fmt, mul=1):
    if not d or d.get('median') is None:
        return 'n/a'
    return '%s [%s–%s]' % (f(d['median'] * mul), f(d['min'] * mul), f(d['max'] * mul))


def write_md(path, meta, summary, t, agree):
    L = []
    w = L.append
    w('<!-- generated by bench/collect.py -->')
    w('Run: %s, machine: %s, host load average at the start %s, kernel image: `%s`, '
      '`make bench` wall time %s s. Cells: median [min–max] over the repetitions (n per row). '
      'Times in ms of a QEMU TCG guest: compare them within this run only.' %
      (meta['date'], meta['machine'], meta.get('load', '?'), meta['kernel'], meta['wall_s']))
    w('')
    w('#### Per kind and size (direct LUO ioctls, no agent), ms')
    w('')
    w('| kind | MiB | n | preserve (data fd) | retrieve (data fd) | preserve + retrieve (data fd) | retrieve incl. session + stamp | kexec path, old kernel | kexec path − nothing | new kernel clock → /init − nothing | map + touch | first full read | entries | metadata B | B/entry | struct pages written at retrieve (per entry) | entries with HVO | pool lock holds at retrieve |')
    w('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for s in summary:
        if s['mode'] != 'direct':
            continue
        hug = s['kind'].startswith('hugetlb')
        w('| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            label(s), s['mib'], s['n'], cell(s, 'preserve_ms'), cell(s, 'retrieve_fd_ms'),
            cell(s, 'preserve_retrieve_fd_ms'), cell(s, 'retrieve_ms'),
            cell(s, 'kexec_path_ms'), cell(s, 'kexec_over_ms'),
            cell(s, 'boot_over_ms'), cell(s, 'remap_ms'), cell(s, 'first_read_ms'),
            cell(s, 'entries'), cell(s, 'meta_bytes'), cell(s, 'meta_per_entry'),
            '%s (%s)' % (cell(s, 'struct_pages'), cell(s, 'struct_pages_per_entry')) if hug else '—',
            cell(s, 'restored_hvo') if hug else '—',
            cell(s, 'pool_locks') if hug else '—'))
    w('')
    for mode, title in (('agent', 'through the agent (hugelived), client = the benchmark program'),
                        ('direct', 'direct (client = the benchmark program, retrieve by ioctl; no agent step)')):
        w('#### Blackout breakdown %s, ms' % title)
        w('')
        w('| what | MiB | n | client quiesced → kexec call | kexec call → new kernel clock | clock → /init | /init → client start | client start → agent ready | ready → memory mapped | blackout (quiesced → mapped) | ÷ nothing, same repetition | + first full read |')
        w('|---|---|---|---|---|---|---|---|---|---|---|---|')
        for s in summary:
            if s['mode'] != mode or (mode == 'direct' and s['mib'] not in (0, 2048)):
                continue
            w('| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                label(s), s['mib'], s['n'], cell(s, 'quiesce_to_call_ms'),
                cell(s, 'call_to_entry_ms'), cell(s, 'entry_to_init_ms'), cell(s, 'init_to_prog_ms'),
                cell(s, 'prog_to_ready_ms') if mode == 'agent' else '—', cell(s, 'ready_to_mapped_ms'),
                cell(s, 'blackout_ms'), cell(s, 'blackout_vs_none'), cell(s, 'read_ms')))
        w('')
    w('#### No preservation: data saved to a virtio disk, normal reboot (new QEMU boot), loaded back, ms')
    w('')
    w('| MiB | n | save (write + fdatasync) | shutdown (host) | boot to client start (host, incl. QEMU + firmware) | load (read) | blackout (save → loaded) | first full read (verify) |')
    w('|---|---|---|---|---|---|---|---|')
    for s in summary:
        if s['mode'] != 'disk':
            continue
        w('| %s | %d | %s | %s | %s | %s | %s | %s |' % (
            s['mib'], s['n'], cell(s, 'save_ms'), cell(s, 'shutdown_ms'), cell(s, 'boot_ms'),
            cell(s, 'load_ms'), cell(s, 'blackout_ms'), cell(s, 'read_ms')))
    w('')
    w('#### Targets, as computed from this run')
    w('')
    for kind in ('hugetlb2m', 'hugetlb1g'):
        m = t.get('meta_' + kind)
        if m:
            w('- metadata, %s: %s B per page (marginal) + %s B per update (file header, pool table); '
              'at %s MiB (%d pages) %s B per page all included → %s' % (
                  kind, fmt(m['marginal_bytes_per_page']), fmt(m['constant_bytes']), m['max_mib'],
                  m['pages_at_max'], fmt(m['total_per_page_at_max']),
                  'met' if m['met_total'] else ('met per page; the fixed part alone exceeds 32 B per page at this page count'
                                                if m['met_marginal'] else 'NOT met')))
    for sfx in ('', '_nohvo'):
        for metric, what in (('preserve_retrieve_fd_ms', 'data fd only'),
                             ('preserve_retrieve_ms', 'retrieve incl. session and stamp fd')):
            r = t.get('ratio_1g_' + metric + sfx)
            if r:
                w('- preserve + retrieve of 1 GiB (%s): 4 KiB memfd %s ms, 2 MiB hugetlb%s %s ms → ×%s of medians '
                  '(per repetition ×%s; target ≥ ×100%s) → %s' % (
                      what, fmt(r['memfd4k_ms']), ' with HVO off' if sfx else '', fmt(r['hugetlb2m_ms']),
                      fmt(r['ratio_of_medians']), sp(r['per_rep']),
                      ', set for HVO on' if sfx else '', 'met' if r['met'] else 'NOT met'))
    r = t.get('marginal_gib')
    if r:
        w('- one more GiB (2048 MiB step − 1024 MiB step, same repetition), preserve + retrieve of the data fd: '
          '4 KiB memfd %s ms, 2 MiB hugetlb %s ms → ×%s of medians (per repetition ×%s) → %s' % (
              fmt(r['memfd4k_ms']), fmt(r['hugetlb2m_ms']),
              fmt(r['ratio_of_medians']) if r['ratio_of_medians'] else 'n/a', sp(r['per_rep']),
              '≥ ×100' if r['met'] else 'below ×100'))
    g = t.get('hugetlb1g_size')
    if g:
        w('- 1 GiB pages, preserve + retrieve (data fd): %s ms for 1 GiB, %s ms for 2 GiB → %s ms per page; '
          '2 GiB in 2 MiB pages %s ms, in a 4 KiB memfd %s ms; retrieve alone %s / %s ms, first full read %s / %s ms' % (
              fmt(g['preserve_retrieve_fd_ms_1024']), fmt(g['preserve_retrieve_fd_ms_2048']),
              fmt(g.get('per_page_ms')), fmt(g.get('h2m_2048')), fmt(g.get('m4k_2048')),
              fmt(g['retrieve_fd_ms_1024']), fmt(g['retrieve_fd_ms_2048']),
              fmt(g['first_read_ms_1024']), fmt(g['first_read_ms_2048'])))
    for mode in ('agent', 'direct'):
        for kind in ('hugetlb2m', 'hugetlb1g', 'memfd4k'):
            b = t.get('blackout_%s_%s' % (mode, kind))
            if b:
                w('- blackout (%s), 2 GiB %s: ×%s of nothing per repetition; medians %s vs %s ms (×%s); '
                  'nothing alone spreads %s ms; the preservation-dependent parts timed precisely '
                  '(retrieve beyond nothing, map + touch, old kernel kexec path beyond nothing) %s ms = %s of the blackout '
                  '(target ≤ 5%%)' % (
                      mode, kind, sp(b['per_rep'], lambda x: '%.3f' % x), fmt(b['ms']), fmt(b['none_ms']),
                      '%.3f' % b['ratio_of_medians'] if b['ratio_of_medians'] else 'n/a',
                      sp(b['none_spread']), sp(b['attrib_ms']), sp(b['attrib_frac'], pct)))
    for kind in ('hugetlb2m', 'hugetlb2m-nohvo', 'hugetlb1g', 'memfd4k'):
        pts = t.get('retrieve_' + kind)
        if pts:
            w('- retrieve of the data fd, %s: %s' % (kind, '; '.join(
                '%s MiB: %s ms = %s µs per entry, %s ms per GiB (reading the data: %s ms per GiB)' % (
                    p['mib'], fmt(p['retrieve_fd_ms']), fmt(p['us_per_entry']), fmt(p['ms_per_gib']),
                    fmt(p['read_ms_per_gib'])) for p in pts)))
    if agree:
        n_in = sum(a['inside'] for a in agree)
        n_ov = sum(a['overlap'] for a in agree)
        w('')
        w('#### Agreement with the previous run (%s)' % agree[0].get('prev_date', '?'))
        w('')
        w('%d of %d medians lie inside the previous run\'s [min–max]; %d of %d [min–max] ranges overlap. '
          'Not overlapping:' % (n_in, len(agree), n_ov, len(agree)))
        w('')
        bad = [a for a in agree if not a['overlap']]
        if not bad:
            w('(none)')
        for a in bad:
            w('- %s %s%s %s MiB %s: now %s [%s–%s], before %s [%s–%s]' % (
                a['mode'], a['kind'], ' (%s VM)' % a['vm'] if a.get('vm') else '', a['mib'], a['metric'],
                fmt(a['now']), fmt(a['now_min']), fmt(a['now_max']), fmt(a['prev']),
                fmt(a['prev_min']), fmt(a['prev_max'])))
    with open(path, 'w') as f:
        f.write('\n'.join(L) + '\n')


def write_plot_data(out, summary):
    """Whitespace tables for gnuplot: one block per kind."""
    with open(os.path.join(out, 'plot-size.dat'), 'w') as f:
        for kind in KINDS:
            f.write('# %s\n' % kind)
            f.write('# mib pr_med pr_min pr_max pres_med pres_min pres_max ret_med ret_min ret_max '
                    'read_med read_min read_max kex_med kex_min kex_max us_per_entry_med min max\n')
            for s in summary:
                if s['mode'] != 'direct' or s['kind'] != kind:
                    continue
                vals = [s['mib']]
                for m in ('preserve_retrieve_fd_ms', 'preserve_ms', 'retrieve_fd_ms', 'first_read_ms',
                          'kexec_path_ms'):
                    d = s.get(m, {'median': float('nan'), 'min': float('nan'), 'max': float('nan')})
                    vals += [d['median'], d['min'], d['max']]
                e = s.get('entries', {}).get('median')
                d = s.get('retrieve_fd_ms')
                vals += [d['median'] * 1e3 / e, d['min'] * 1e3 / e, d['max'] * 1e3 / e] if e and d else [float('nan')] * 3
                f.write(' '.join('%g' % v for v in vals) + '\n')
            f.write('\n\n')
    with open(os.path.join(out, 'plot-blackout.dat'), 'w') as f:
        f.write('# label quiesce_to_call call_to_entry entry_to_init init_to_prog prog_to_ready ready_to_mapped\n')
        for s in summary:
            if s['mode'] != 'agent':
                continue
            lab = ('nothing-' + s.get('vm', '').replace('agent', '')) if s['kind'] == 'none' else '%s-%dG' % (s['kind'], s['mib'] // 1024) if s['mib'] >= 1024 else '%s-%dM' % (s['kind'], s['mib'])
            vals = [s.get(m, {}).get('median', 0) for m in
                    ('quiesce_to_call_ms', 'call_to_entry_ms', 'entry_to_init_ms', 'init_to_prog_ms',
                     'prog_to_ready_ms', 'ready_to_mapped_ms')]
            f.write('"%s" %s\n' % (lab, ' '.join('%g' % (v / 1e3) for v in vals)))
    with open(os.path.join(out, 'plot-direct.dat'), 'w') as f:
        f.write('# label quiesce_to_call call_to_entry entry_to_init init_to_prog ready_to_mapped\n')
        for s in summary:
            if s['mode'] != 'direct' or s['mib'] not in (0, 2048):
                continue
            lab = ('nothing-' + s.get('vm', '')) if s['kind'] == 'none' else '%s-2G' % s['kind']
            vals = [s.get(m, {}).get('median', 0) for m in
                    ('quiesce_to_call_ms', 'call_to_entry_ms', 'entry_to_init_ms', 'init_to_prog_ms',
                     'ready_to_mapped_ms')]
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


SCALE_CHAINS = ('scale2m', 'scale1g')
SCALE_STAGES = [('preserve_ms', 'preserve (data fd)'),
                ('kexec_path_ms', 'kexec path, old kernel'),
                ('entry_to_init_ms', 'new kernel clock → /init'),
                ('retrieve_fd_ms', 'retrieve (data fd)'),
                ('remap_ms', 'map + touch'),
                ('finish_ms', 'finish')]


def linfit(pts):
    """Least squares y = a + b x over (x, y) points: (a, b, r2), or None."""
    if len(pts) < 3 or len({x for x, _ in pts}) < 2:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    b = sxy / sxx
    a = my - b * mx
    ss = sum((y - my) ** 2 for _, y in pts)
    res = sum((y - a - b * x) ** 2 for x, y in pts)
    return a, b, (1 - res / ss) if ss else 1.0


def scale_fits(rows):
    """Per scale chain and stage: cost = constant + per page, over every
    repetition (the "nothing" steps are the points at 0 pages)."""
    out = []
    for chain in SCALE_CHAINS:
        rs = [r for r in rows if r.get('chain') == chain]
        if not rs:
            continue
        kind = next((r['kind'] for r in rs if r['kind'] != 'none'), '?')
        for stage, title in SCALE_STAGES:
            pts = [(r.get('entries') or 0, r[stage]) for r in rs if isinstance(r.get(stage), (int, float))]
            f = linfit(pts)
            if not f:
                continue
            out.append({'chain': chain, 'kind': kind, 'stage': stage, 'title': title, 'n': len(pts),
                        'const_ms': f[0], 'per_page_us': f[1] * 1e3, 'r2': f[2],
                        'max_pages': max(x for x, _ in pts)})
    return out


def scale_boot(rows):
    """New kernel clock -> /init at the largest size against nothing, per chain."""
    out = []
    for chain in SCALE_CHAINS:
        rs = [r for r in rows if r.get('chain') == chain and isinstance(r.get('entry_to_init_ms'), (int, float))]
        if not rs:
            continue
        top = max(r['mib'] for r in rs)
        none = [r['entry_to_init_ms'] for r in rs if r['kind'] == 'none']
        big = [r['entry_to_init_ms'] for r in rs if r['mib'] == top and r['kind'] != 'none']
        if none and big and top:
            m0, m1 = statistics.median(none), statistics.median(big)
            out.append({'chain': chain, 'mib': top, 'none_ms': m0, 'top_ms': m1,
                        'over_frac': (m1 - m0) / m0 if m0 else None, 'n': min(len(none), len(big))})
    return out


def write_scale(out, rows):
    """scale.csv, plot-scale.dat and a section appended to summary.md."""
    fits = scale_fits(rows)
    if not fits:
        return
    with open(os.path.join(out, 'scale.csv'), 'w', newline='') as f:
        wr = csv.writer(f)
        wr.writerow(['chain', 'kind', 'stage', 'n', 'const_ms', 'per_page_us', 'r2', 'max_pages'])
        for s in fits:
            wr.writerow([s['chain'], s['kind'], s['stage'], s['n'], '%.4g' % s['const_ms'],
                         '%.4g' % s['per_page_us'], '%.3f' % s['r2'], s['max_pages']])
    with open(os.path.join(out, 'plot-scale.dat'), 'w') as f:
        for chain in SCALE_CHAINS:
            f.write('# %s: pages preserve kexec_path entry_to_init retrieve_fd remap\n' % chain)
            for r in rows:
                if r.get('chain') != chain:
                    continue
                vals = [r.get('entries') or 0] + [r.get(m) for m, _ in SCALE_STAGES[:5]]
                f.write(' '.join('nan' if v is None else '%g' % v for v in vals) + '\n')
            f.write('\n\n')
    with open(os.path.join(out, 'summary.md'), 'a') as f:
        f.write('\n#### Scale: cost against the number of preserved pages (direct), fit constant + per page\n\n')
        f.write('| chain | stage | points | constant, ms | per page, µs | r² | pages at the largest size |\n')
        f.write('|---|---|---|---|---|---|---|\n')
        for s in fits:
            f.write('| %s (%s) | %s | %d | %s | %s | %.3f | %d |\n' % (
                s['chain'], s['kind'], s['title'], s['n'], fmt(s['const_ms']), fmt(s['per_page_us']),
                s['r2'], s['max_pages']))
        f.write('\n| chain | MiB | entries | struct pages written at retrieve per entry | pool lock holds at retrieve | retrieve (data fd), ms |\n')
        f.write('|---|---|---|---|---|---|\n')
        for chain in SCALE_CHAINS:
            sizes = sorted({r['mib'] for r in rows if r.get('chain') == chain and r['kind'] != 'none'})
            for mib in sizes:
                rs = [r for r in rows if r.get('chain') == chain and r['mib'] == mib and r['kind'] != 'none']
                sp = [r['struct_pages_per_entry'] for r in rs if isinstance(r.get('struct_pages_per_entry'), (int, float))]
                lk = [r['pool_locks'] for r in rs if isinstance(r.get('pool_locks'), (int, float))]
                rt = [r['retrieve_fd_ms'] for r in rs if isinstance(r.get('retrieve_fd_ms'), (int, float))]
                f.write('| %s | %d | %s | %s | %s | %s |\n' % (
                    chain, mib, rs[0].get('entries'), fmt(statistics.median(sp)) if sp else 'n/a',
                    fmt(statistics.median(lk)) if lk else 'n/a', fmt(statistics.median(rt)) if rt else 'n/a'))
        for b in scale_boot(rows):
            f.write('\n- %s: new kernel clock → /init %s ms with %d MiB preserved against %s ms with nothing '
                    '(medians of %d) → %+.1f%% (target ≤ 1%%; the printk clock of a TCG guest, so the spread '
                    'of "nothing" alone is the resolution)\n' % (
                        b['chain'], fmt(b['top_ms']), b['mib'], fmt(b['none_ms']), b['n'],
                        100 * b['over_frac'] if b['over_frac'] is not None else float('nan')))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('logdir')
    ap.add_argument('out')
    ap.add_argument('--machine', default='?')
    ap.add_argument('--kernel', default='?')
    ap.add_argument('--wall', default='?')
    ap.add_argument('--load', default='?')
    a = ap.parse_args()
    rows = []
    for name in ('memfd4k', 'hugetlb2m', 'hugetlb1g', 'agent2m', 'agent1g'):
        rows += chain_rows(a.logdir, name)
    # The scale chains have a mode of their own: their sizes overlap the
    # others' but their VMs differ, so they are summarized apart.
    for name in SCALE_CHAINS:
        for r in chain_rows(a.logdir, name):
            r['mode'] = 'scale'
            rows.append(r)
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
            'machine': a.machine, 'kernel': a.kernel, 'wall_s': a.wall, 'load': a.load}
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
    write_scale(a.out, rows)
    write_plot_data(a.out, summary)
    update_doc(a.out)
    print(open(os.path.join(a.out, 'summary.md')).read())


if __name__ == '__main__':
    main()
