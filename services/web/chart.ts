import { html, type SafeHtml } from './html.js';
import { date, fill, formatSeconds, type Lang, type Strings } from './i18n.js';

export interface DurationPoint {
  at: Date;
  seconds: number;
  runId: string;
}

const W = 640;
const H = 220;
const PAD = { l: 118, r: 16, t: 16, b: 36 };

/**
 * Restore duration over time against the RTO line, as inline SVG drawn on the
 * server (no script, no external resource). The chart is an image with a
 * summary as its text alternative; every value is also in the history table.
 * Points over the target are squares, the others circles (not colour alone).
 */
export function durationChart(points: DurationPoint[], rtoSeconds: number | null, s: Strings, lang: Lang): SafeHtml {
  if (points.length === 0) return html`<p>${s.chartNone}</p>`;
  const pts = [...points].sort((a, b) => a.at.getTime() - b.at.getTime());
  const maxY = Math.max(...pts.map((p) => p.seconds), rtoSeconds ?? 0) * 1.15 || 1;
  const t0 = pts[0]!.at.getTime();
  const t1 = pts.at(-1)!.at.getTime();
  const span = t1 - t0 || 1;
  const x = (t: number) => (pts.length === 1 ? (PAD.l + W - PAD.r) / 2 : PAD.l + ((t - t0) / span) * (W - PAD.l - PAD.r));
  const y = (v: number) => H - PAD.b - (v / maxY) * (H - PAD.t - PAD.b);
  const r1 = (n: number) => Math.round(n * 10) / 10;
  const over = rtoSeconds === null ? 0 : pts.filter((p) => p.seconds > rtoSeconds).length;
  const summary = fill(s.chartSummary, {
    n: pts.length, max: formatSeconds(Math.max(...pts.map((p) => p.seconds)), lang), last: formatSeconds(pts.at(-1)!.seconds, lang),
    target: rtoSeconds === null ? s.dash : formatSeconds(rtoSeconds, lang), over,
  });
  const line = pts.map((p) => `${r1(x(p.at.getTime()))},${r1(y(p.seconds))}`).join(' ');
  const marks = pts.map((p) => {
    const cx = r1(x(p.at.getTime()));
    const cy = r1(y(p.seconds));
    return rtoSeconds !== null && p.seconds > rtoSeconds
      ? html`<rect class="pt pt-over" x="${cx - 4}" y="${cy - 4}" width="8" height="8"/>`
      : html`<circle class="pt" cx="${cx}" cy="${cy}" r="3.5"/>`;
  });
  const ticks = [0, maxY / 1.15 / 2, maxY / 1.15].map((v) => html`<text class="tick" x="${PAD.l - 6}" y="${r1(y(v)) + 4}" text-anchor="end">${formatSeconds(v, lang)}</text><line class="grid" x1="${PAD.l}" x2="${W - PAD.r}" y1="${r1(y(v))}" y2="${r1(y(v))}"/>`);
  return html`<figure class="chart">
<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-t chart-d" preserveAspectRatio="xMidYMid meet">
<title id="chart-t">${s.chartTitle}</title><desc id="chart-d">${summary}</desc>
${ticks}
<line class="axis" x1="${PAD.l}" x2="${W - PAD.r}" y1="${H - PAD.b}" y2="${H - PAD.b}"/>
${rtoSeconds !== null ? html`<line class="rto" x1="${PAD.l}" x2="${W - PAD.r}" y1="${r1(y(rtoSeconds))}" y2="${r1(y(rtoSeconds))}"/><text class="tick rto-label" x="${W - PAD.r}" y="${r1(y(rtoSeconds)) - 5}" text-anchor="end">RTO ${formatSeconds(rtoSeconds, lang)}</text>` : ''}
<polyline class="series" points="${line}"/>
${marks}
<text class="tick" x="${PAD.l}" y="${H - 12}">${date(pts[0]!.at, lang)}</text>
${pts.length > 1 ? html`<text class="tick" x="${W - PAD.r}" y="${H - 12}" text-anchor="end">${date(pts.at(-1)!.at, lang)}</text>` : ''}
</svg>
<figcaption>${summary} ${rtoSeconds !== null ? `(${s.chartLegendRto})` : ''}</figcaption>
</figure>`;
}
