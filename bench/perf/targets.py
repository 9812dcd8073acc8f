#!/usr/bin/env python3
"""Check bulwark's performance targets against perf-compare results (bench.py .jsonl files).

  python3 bench/perf/targets.py [--target ours] results-1.jsonl [results-2.jsonl ...]

Prints a Markdown table: one row per target, the measured ratio or value computed from the medians of
the same run(s), the threshold and PASS / MISS. Every number comes from the files; nothing is fixed here
except the thresholds (G1/G3/G4/G5/G7/G9, listed in TARGETS below).
"""
import argparse, json, statistics


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(v, nd=0):
    return 'n/a' if v is None else f'{v:,.{nd}f}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--target', default='ours')
    ap.add_argument('files', nargs='+')
    a = ap.parse_args()
    rows = [json.loads(l) for p in a.files for l in open(p) if l.strip()]
    data = [r for r in rows if r['phase'] not in ('meta', 'mem')]
    mem = [r for r in rows if r['phase'] == 'mem']
    us = a.target

    def group(phase, pin, variant_of):
        """{target: [runs]} for one (phase, pin); variant_of(target) names the variant per target."""
        g = {}
        for r in data:
            if r['phase'] == phase and r['pin'] == pin and r['variant'] == variant_of(r['target']):
                g.setdefault(r['target'], []).append(r)
        return g

    out = ['| # | target | pin | measured | threshold | verdict | runs (ours/haproxy) | foreign CPU s, max over these runs |',
           '|---|---|---|---|---|---|---|---|']

    def noise(*groups):
        vals = [x.get('foreign_cpu_s', 0) for g in groups for x in g]
        return f'{max(vals):.2f}' if vals else 'n/a'

    def sfmt(v):
        return 'n/a' if v is None else f'{v:+,.0f}'

    def ratio_row(tag, label, phase, pin, variant_of, need):
        g = group(phase, pin, variant_of)
        if us not in g or 'haproxy' not in g:
            return
        ours, ha = med([x['rps'] for x in g[us]]), med([x['rps'] for x in g['haproxy']])
        if not ours or not ha:
            out.append(f'| {tag} | {label} | {pin} | n/a | ≥ {need:.2f}× HAProxy | n/a | {len(g[us])}/{len(g["haproxy"])} | {noise(g[us], g["haproxy"])} |')
            return
        r = ours / ha
        verdict = 'PASS' if r >= need else ('tie (within 5 %)' if r >= need * 0.95 else 'MISS')
        out.append(f'| {tag} | {label} | {pin} | {r:.2f}× HAProxy ({fmt(ours)} vs {fmt(ha)} req/s) | ≥ {need:.2f}× | '
                   f'{verdict} | {len(g[us])}/{len(g["haproxy"])} | {noise(g[us], g["haproxy"])} |')

    pins = sorted({r['pin'] for r in data}, key=lambda p: p != 'split')
    for pin in pins:
        conns = sorted({r['variant'] for r in data if r['phase'] == 'wrk'})
        for v in conns:
            ratio_row('G1', f'HTTP/1.1 keep-alive throughput (wrk {v})', 'wrk', pin, lambda t, v=v: v, 1.10)
        ratio_row('G3', 'h2c→HTTP/1.1 throughput (h2load -c50 -m10)', 'h2load', pin,
                  lambda t: 'h2c->h1 c50 m10', 1.0)
        ratio_row('G4', 'h2c→HTTP/2 throughput (h2load -c50 -m10)', 'h2load', pin,
                  lambda t: 'h2c->h2 c50 m10', 1.0)

    # G5: latency added over direct at equal load (wrk + Poisson think time), p50 and p99 <= best peer
    for pin in pins:
        for v in sorted({r['variant'] for r in data if r['phase'] == 'rate' and r['variant'].endswith('wrk-poisson')},
                        key=lambda s: int(s.split('~')[1].split('rps')[0])):
            g = group('rate', pin, lambda t, v=v: v)
            if us not in g or 'direct' not in g:
                continue
            for q in ('p50_us', 'p99_us'):
                d = med([x.get(q) for x in g['direct']])
                added = {n: med([x.get(q) for x in g[n]]) - d for n in g if n != 'direct' and d is not None}
                peers = {n: x for n, x in added.items() if n in ('haproxy', 'nginx')}
                if us not in added or not peers:
                    continue
                best_name = min(peers, key=peers.get)
                best = peers[best_name]
                ok = added[us] <= best
                out.append(f'| G5 | added {q[:3]} latency at {v} | {pin} | {sfmt(added[us])} µs '
                           f'(haproxy {sfmt(added.get("haproxy"))}, nginx {sfmt(added.get("nginx"))}) | '
                           f'≤ best peer ({sfmt(best)} µs, {best_name}) | {"PASS" if ok else "MISS"} | '
                           f'{len(g[us])}/{len(g.get("haproxy", []))} | {noise(*g.values())} |')

    # G7: idle memory per connection on a fresh process
    for proto, need in (('h1', 1.0), ('h2', 6.5)):
        ms = [r for r in mem if r['target'] == us and r['proto'] == proto]
        if not ms:
            continue
        kb = med([r['kb_per_conn'] for r in ms])
        peers = ', '.join(f"{n} {fmt(med([r['kb_per_conn'] for r in mem if r['target'] == n and r['proto'] == proto]), 2)}"
                          for n in ('haproxy', 'nginx') if any(r['target'] == n and r['proto'] == proto for r in mem))
        out.append(f'| G7 | idle memory per {proto} connection ({ms[0]["conns"]} conns) | — | {kb:.2f} KB ({peers}) | '
                   f'≤ {need} KB | {"PASS" if kb <= need else "MISS"} | {len(ms)} | — |')

    # G9: correctness under load: no errors in any of our runs
    bad = []
    for r in data:
        if r['target'] != us:
            continue
        errs = []
        if r.get('rc'):
            errs.append(f"rc={r['rc']}")
        if r.get('non2xx'):
            errs.append(f"non2xx={r['non2xx']}")
        if r.get('socket_errors'):
            errs.append(f"socket errors: {r['socket_errors']}")
        if r.get('failed') or r.get('errored'):
            errs.append(f"h2load failed={r.get('failed')} errored={r.get('errored')}")
        if errs:
            bad.append(f"{r['phase']} {r['pin']} {r['variant']} rep{r['rep']}: " + '; '.join(errs))
    n_ours = sum(1 for r in data if r['target'] == us)
    out.append(f'| G9 | 0 non-2xx, 0 socket errors, 0 failed streams | all | {len(bad)} of {n_ours} runs with errors | 0 | '
               f'{"PASS" if not bad else "MISS"} | {n_ours} | — |')
    print('\n'.join(out))
    if bad:
        print('\nRuns with errors:\n')
        for b in bad:
            print(f'- {b}')


if __name__ == '__main__':
    main()
