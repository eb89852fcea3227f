/** Writes suite results: bench/results/<date>-<suite>.json and .md, and latest.md. */
import { formatNs } from './stats.js';
import type { SuiteResult } from './types.js';

export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  kernel: string;
  node: string;
  os: string;
  privilege: string;
  vipaCommit: string;
}

export interface Report extends SuiteResult {
  machine: MachineInfo;
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function machineMarkdown(m: MachineInfo): string {
  return [
    '| Machine | |',
    '|---|---|',
    `| Date | ${m.date} |`,
    `| CPU | ${escapeCell(m.cpu)} |`,
    `| Cores | ${m.cores} |`,
    `| Kernel | ${m.kernel} |`,
    `| OS | ${escapeCell(m.os)} |`,
    `| Node | ${m.node} |`,
    `| Privilege | ${m.privilege} |`,
    `| vipa | ${escapeCell(m.vipaCommit)} |`,
  ].join('\n');
}

export function suiteMarkdown(r: Report, headingLevel = 1): string {
  const h = '#'.repeat(headingLevel);
  const out: string[] = [`${h} ${r.title}`, '', `Mode: ${String(r.config.mode ?? 'full')}. All figures are from one run of \`npm run bench\`.`, '', machineMarkdown(r.machine), ''];
  // Summary sections first: the row tables below hold every figure, but at length.
  for (const section of r.sections ?? []) out.push(`${h}# ${section.title}`, '', section.markdown.trimEnd(), '');
  const groups = [...new Set(r.rows.map((row) => row.group))];
  for (const g of groups) {
    out.push(`${h}# ${g}`, '');
    const rows = r.rows.filter((row) => row.group === g);
    const perItem = rows.some((row) => row.items);
    const thread = rows.some((row) => row.threadCpuPerItem !== undefined);
    out.push(
      `| Measurement | Timed by | Samples | Median | Mean | Mean ≤ p99 | p75 | p99 | Min | Block medians (min–max) |${perItem ? ' Median per address |' : ''}` +
        `${thread ? ' Thread CPU per sample | Involuntary switches per sample |' : ''}`,
      `|---|---|--:|--:|--:|--:|--:|--:|--:|--:|${perItem ? '--:|' : ''}${thread ? '--:|--:|' : ''}`,
    );
    for (const row of rows) {
      const s = row.stats;
      const blocks = row.blockMedians && row.blockMedians.length > 1 ? `${formatNs(Math.min(...row.blockMedians))} – ${formatNs(Math.max(...row.blockMedians))}` : '–';
      const label = row.note ? `${row.label} (${row.note})` : row.label;
      out.push(
        `| ${escapeCell(label)} | ${row.source} | ${s.samples} | **${formatNs(s.median)}** | ${formatNs(s.mean)} | ${formatNs(s.trimmedMean)} | ${formatNs(s.p75)} | ${formatNs(s.p99)} | ${formatNs(s.min)} | ${blocks} |` +
          (perItem ? ` ${row.items ? formatNs(s.median / row.items) : '–'} |` : '') +
          (thread ? ` ${row.threadCpuPerItem === undefined ? '–' : formatNs(row.threadCpuPerItem)} | ${row.switchesPerItem === undefined ? '–' : row.switchesPerItem.toFixed(2)} |` : ''),
      );
    }
    out.push('');
  }
  if (r.ratios.length > 0) {
    out.push(
      `${h}# Ratios (this run)`,
      '',
      '| Ratio | Median / median | Mean≤p99 / mean≤p99 | Paired: median over blocks of block mean≤p99 ratios | Thread CPU / thread CPU | Target (on medians) | |',
      '|---|--:|--:|--:|--:|--:|---|',
    );
    for (const q of r.ratios) {
      const verdict = q.target === undefined ? '' : q.pass ? 'met' : '**missed**';
      out.push(
        `| ${escapeCell(q.label)} | **${q.value.toFixed(2)}** | ${q.trimmedMean.toFixed(2)} | ${q.paired === undefined ? '–' : q.paired.toFixed(2)} | ` +
          `${q.threadCpu === undefined ? '–' : q.threadCpu.toFixed(2)} | ` +
          `${q.target === undefined ? '–' : `≤ ${q.target}`} | ${verdict} |`,
      );
    }
    out.push('');
  }
  if (r.notes.length > 0) {
    out.push(`${h}# Method`, '', ...r.notes.map((n) => `- ${n}`), '');
  }
  out.push(`${h}# Configuration`, '', '```json', JSON.stringify(r.config, null, 2), '```', '');
  return out.join('\n');
}
