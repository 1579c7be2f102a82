// Queue depth and workers over the last hour (uPlot), extended live by `metrics` events.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { MetricsSample } from '@kiln/protocol';

const SERIES: { key: keyof MetricsSample; label: string; color: string; dash?: number[] }[] = [
  { key: 'inQueue', label: 'In queue', color: '#d97706' },
  { key: 'inProgress', label: 'In progress', color: '#2563eb' },
  { key: 'workers', label: 'Workers', color: '#16a34a', dash: [6, 4] },
  { key: 'running', label: 'Workers running', color: '#7c3aed', dash: [2, 3] },
];

const stepped = uPlot.paths.stepped?.({ align: 1 });

function toData(samples: readonly MetricsSample[]): uPlot.AlignedData {
  return [samples.map((s) => s.t / 1000), ...SERIES.map((s) => samples.map((x) => x[s.key] as number))];
}

export function QueueChart({ samples, title }: { samples: readonly MetricsSample[]; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const dark = matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;
    const axisStroke = dark ? '#a1a1aa' : '#52525b';
    const grid = { stroke: dark ? '#3f3f46' : '#e4e4e7', width: 1 };
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height: 220,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(2, Math.ceil(max * 1.1))] } },
      axes: [
        { stroke: axisStroke, grid, ticks: grid },
        { stroke: axisStroke, grid, ticks: grid, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
      ],
      series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.color, width: 2, paths: stepped, ...(s.dash ? { dash: s.dash } : {}), points: { show: false } }))],
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
    };
    const u = new uPlot(opts, toData(samples), el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(320, el.clientWidth), height: 220 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  useEffect(() => {
    plot.current?.setData(toData(samples));
  }, [samples]);

  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`${title}: ${describe(samples)}`} />
    </figure>
  );
}

function describe(samples: readonly MetricsSample[]): string {
  const last = samples.at(-1);
  if (!last) return 'no samples yet';
  return `now ${last.inQueue} in queue, ${last.inProgress} in progress, ${last.workers} workers (${last.running} running), ${samples.length} samples`;
}
