/**
 * A line chart as a standalone SVG file, written by hand (no dependency):
 * logarithmic axes, one polyline with point markers per series, a legend,
 * and each point's value in a <title> (shown on hover). Enough for "outage
 * versus heartbeat interval" and nothing more.
 */

export interface ChartSeries {
  label: string;
  color: string;
  /** stroke-dasharray, e.g. '6 4' for a target line. */
  dash?: string;
  /** Draw markers (default true). */
  markers?: boolean;
  points: { x: number; y: number; note?: string }[];
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  /** Tick values on each axis (both axes are logarithmic). */
  xTicks: number[];
  yTicks: number[];
  series: ChartSeries[];
  width?: number;
  height?: number;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function tickText(v: number): string {
  return v >= 1000 ? `${v / 1000} s` : `${v} ms`;
}

export function lineChartSvg(o: ChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 460;
  const m = { left: 78, right: 220, top: o.subtitle ? 62 : 44, bottom: 58 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const [x0, x1] = [Math.min(...o.xTicks), Math.max(...o.xTicks)];
  const [y0, y1] = [Math.min(...o.yTicks), Math.max(...o.yTicks)];
  const lx = (v: number) => m.left + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * plotW;
  // Values outside the y range are drawn at its edge rather than off the chart.
  const ly = (v: number) => m.top + plotH - ((Math.log10(Math.min(y1, Math.max(y0, v))) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * plotH;
  const f = (n: number) => n.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="22" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`,
  ];
  if (o.subtitle) out.push(`<text x="${m.left}" y="40" fill="#555">${escapeXml(o.subtitle)}</text>`);
  // Grid and ticks.
  for (const t of o.xTicks) {
    out.push(`<line x1="${f(lx(t))}" y1="${m.top}" x2="${f(lx(t))}" y2="${m.top + plotH}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${f(lx(t))}" y="${m.top + plotH + 18}" text-anchor="middle">${tickText(t)}</text>`);
  }
  for (const t of o.yTicks) {
    out.push(`<line x1="${m.left}" y1="${f(ly(t))}" x2="${m.left + plotW}" y2="${f(ly(t))}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${m.left - 8}" y="${f(ly(t) + 4)}" text-anchor="end">${tickText(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${m.left + plotW / 2}" y="${height - 14}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  // Series.
  o.series.forEach((s, i) => {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 0) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.map((p) => `${f(lx(p.x))},${f(ly(p.y))}`).join(' ')}"/>`,
      );
      if (s.markers !== false) {
        for (const p of pts) {
          out.push(
            `<circle cx="${f(lx(p.x))}" cy="${f(ly(p.y))}" r="3.5" fill="${s.color}"><title>${escapeXml(`${s.label}: ${p.note ?? `${p.y.toFixed(1)} ms`} at ${tickText(p.x)}`)}</title></circle>`,
          );
        }
      }
    }
    const ly0 = m.top + 10 + i * 20;
    const lx0 = m.left + plotW + 16;
    out.push(`<line x1="${lx0}" y1="${ly0}" x2="${lx0 + 26}" y2="${ly0}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${lx0 + 32}" y="${ly0 + 4}">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}
