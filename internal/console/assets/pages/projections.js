// Projections: their state, applied events, lag and rate, polled about
// once a second from GET /v1/projections, with a rolling lag chart per
// projection (inline SVG; no chart library).

import {api} from '../api.js';
import {h, svg, time, number, errorBox, hashFor, present, plural} from '../dom.js';

const WINDOW = 120; // samples kept: two minutes at one a second
const POLL_MS = 1000;

// Lag samples by projection, kept while the console is open, so that
// coming back to the page shows the recent past.
const history = new Map();

export async function renderProjections(ctx) {
  const {main, signal} = ctx;
  main.append(h('h1', {tabindex: '-1'}, 'Projections'),
    h('p', {class: 'muted'}, 'Lag is how many offsets a view is behind the end of its events topics. Updated every second.'));
  const grid = h('div', {class: 'projections', id: 'projections'});
  const err = h('div');
  main.append(err, grid);
  const cards = new Map();

  async function poll() {
    let r;
    try {
      r = await api('/v1/projections', {signal});
      err.replaceChildren();
    } catch (e) {
      if (e.name === 'AbortError') return;
      err.replaceChildren(errorBox(e));
      return;
    }
    const now = Date.now();
    for (const p of r.projections) {
      const samples = history.get(p.name) || [];
      samples.push({t: now, lag: p.lag});
      while (samples.length > WINDOW) samples.shift();
      history.set(p.name, samples);
      let card = cards.get(p.name);
      if (!card) {
        card = makeCard(p.name);
        cards.set(p.name, card);
        grid.append(card.el);
      }
      card.update(p, samples);
    }
  }

  await poll();
  const timer = setInterval(poll, POLL_MS);
  signal.addEventListener('abort', () => clearInterval(timer));
}

function makeCard(name) {
  const state = h('span', {class: 'badge'});
  const figures = h('dl', {class: 'figures'});
  const chart = svg('svg', {class: 'chart', viewBox: '0 0 300 80', preserveAspectRatio: 'none', role: 'img'});
  const caption = h('p', {class: 'muted chart-caption'});
  const extra = h('div');
  const el = h('section', {class: 'card projection', dataset: {name}, 'aria-labelledby': 'p-' + name},
    h('h2', {id: 'p-' + name}, h('a', {href: hashFor(['views', name])}, name), ' ', state),
    figures, chart, caption, extra);
  return {
    el,
    update(p, samples) {
      state.textContent = p.state;
      state.className = 'badge ' + (p.state === 'running' && !p.failed ? 'ok' : 'bad');
      const parked = (p.parked || []).reduce((n, x) => n + x.events, 0);
      figures.replaceChildren(
        ...fig('lag', number(p.lag), 'lag'),
        ...fig('rate', `${number(Math.round(p.rate_per_s))}/s`, 'rate'),
        ...fig('applied since start', number(p.applied), 'applied'),
        ...fig('generation', String(p.generation), 'generation'),
        ...fig('parked events', number(parked), 'parked'));
      drawChart(chart, samples);
      chart.dataset.samples = String(samples.length);
      chart.setAttribute('aria-label', `Lag of ${name} over the last ${samples.length} seconds; now ${p.lag}`);
      caption.replaceChildren(`lag over the last ${samples.length} s · max ${number(Math.max(...samples.map((s) => s.lag)))}`);
      const parts = [];
      if (p.error) parts.push(errorBox(new Error(p.error)));
      for (const [tp, why] of Object.entries(p.failed || {})) parts.push(errorBox(new Error(`${tp} stopped: ${why}`)));
      if (p.parked && p.parked.length) {
        parts.push(h('p', {}, h('a', {href: '#/dlq'}, plural(p.parked.length, 'parked aggregate')), ' — replay them after a fix with ', h('code', {}, `strata projection retry ${name}`)));
      }
      if (p.rebuild) {
        parts.push(h('p', {}, `rebuild to generation ${p.rebuild.generation}: ${number(p.rebuild.applied)} of ${number(p.rebuild.total)} offsets` +
          (p.rebuild.done ? ', done' : p.rebuild.eta ? `, ETA ${p.rebuild.eta}` : '')));
      }
      parts.push(h('details', {}, h('summary', {}, `Partitions (${(p.partitions || []).length})`),
        h('table', {class: 'list compact'},
          h('thead', {}, h('tr', {}, ['topic', 'partition', 'applied', 'end', 'lag'].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', {}, (p.partitions || []).map((x) => h('tr', {},
            h('td', {}, x.topic), h('td', {class: 'num'}, x.partition), h('td', {class: 'num'}, number(x.applied)),
            h('td', {class: 'num'}, number(x.end)), h('td', {class: 'num'}, number(x.lag))))))),
      h('p', {class: 'muted'}, 'running since ', time(p.since)));
      // Keep an open <details> open across updates.
      const open = extra.querySelector('details')?.open;
      extra.replaceChildren(...parts);
      if (open) extra.querySelector('details').open = true;
    },
  };
}

function fig(label, value, key) {
  return [h('dt', {}, label), h('dd', {dataset: {fig: key}}, value)];
}

// drawChart draws the samples as an area and a line, scaled to the
// window's maximum (at least 1, so that a flat zero sits at the bottom).
function drawChart(el, samples) {
  const W = 300, H = 80, pad = 2;
  const maxLag = Math.max(1, ...samples.map((s) => s.lag));
  const x = (i) => (WINDOW === 1 ? W : (W * (WINDOW - samples.length + i)) / (WINDOW - 1));
  const y = (lag) => H - pad - ((H - 2 * pad) * lag) / maxLag;
  const pts = samples.map((s, i) => `${x(i).toFixed(1)},${y(s.lag).toFixed(1)}`);
  const first = x(0).toFixed(1);
  el.replaceChildren(...present(
    svg('line', {x1: 0, y1: H - pad, x2: W, y2: H - pad, class: 'axis'}),
    samples.length > 1 ? svg('polygon', {class: 'area', points: `${first},${H - pad} ${pts.join(' ')} ${x(samples.length - 1).toFixed(1)},${H - pad}`}) : null,
    svg('polyline', {class: 'line', points: pts.join(' ')})));
}
